"""Callback URLs: what webhooks may reach, decided on every address a name resolves to."""

from __future__ import annotations

import pytest

from app.webhooks.addresses import (
    BadCallbackUrl,
    check_callback_url,
    forbidden,
    resolve_for_delivery,
)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),  # AWS's IPv6 metadata
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.100.100.200", "shared"),  # Alibaba Cloud's metadata
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("192.0.2.10", "private"),
        ("240.0.0.1", "private"),  # Python calls 240/4 private
    ],
)
def test_inside_addresses_are_forbidden(address, why):
    assert why in (forbidden(address) or "")


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address):
    assert forbidden(address) is None


def resolver(*addresses):
    return lambda host, port: list(addresses)


def test_every_address_of_a_name_is_checked():
    url = "https://hooks.example.com/in"
    assert check_callback_url(url, allow_private=False, resolver=resolver("93.184.216.34")) == url
    with pytest.raises(BadCallbackUrl, match=r"10\.0\.0\.5, a private address"):
        check_callback_url(url, allow_private=False, resolver=resolver("93.184.216.34", "10.0.0.5"))
    assert check_callback_url(url, allow_private=True, resolver=resolver("10.0.0.5")) == url


def test_the_address_connected_to_is_the_one_checked():
    target = resolve_for_delivery(
        "https://hooks.example.com:8443/in?t=1",
        allow_private=False,
        resolver=resolver("93.184.216.34"),
    )
    assert (target.host, target.address, target.port, target.path) == (
        "hooks.example.com",
        "93.184.216.34",
        8443,
        "/in?t=1",
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/x", "https:// or http://"),
        ("http:///x", "no host"),
        ("http://u:p@example.com/", "credentials"),
        ("http://example.com/#x", "fragment"),
        ("http://example.com:99999/", "not a URL"),
        ("http://exa mple.com/", "spaces"),
        ("http://example.com/" + "x" * 2000, "at most"),
        ("http://1.1.1.1:0/", "port must be"),
    ],
)
def test_malformed_urls_say_why(url, says):
    with pytest.raises(BadCallbackUrl, match=says):
        check_callback_url(url, allow_private=True, resolver=resolver("93.184.216.34"))


def test_a_name_that_does_not_resolve():
    def fails(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(BadCallbackUrl, match="does not resolve"):
        check_callback_url("http://nowhere.invalid/", allow_private=True, resolver=fails)
