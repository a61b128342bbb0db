"""Which URLs a webhook may be sent to: http(s) on a public address, checked twice.

A webhook is a request our servers make to a URL a client chose, so a careless service lets
anyone reach what only it can: ``http://169.254.169.254/`` (a cloud's metadata and its
credentials), ``http://127.0.0.1:5432``, the private network behind it. Every address the host
resolves to must be public — not loopback, private, link-local, shared (CGNAT), multicast,
reserved or unspecified, IPv4-mapped forms included — unless ``WEBHOOK_ALLOW_PRIVATE=1`` (a
development stack whose receiver runs beside it). The check runs when the URL is given (a 400)
and again when each attempt is made (:func:`resolve_for_delivery`), whose answer is the very
address the POST connects to: a name that resolved to a public address at upload and to
``127.0.0.1`` since (DNS rebinding) is refused, not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

#: The longest callback URL accepted.
MAX_URL_CHARS = 2000

Resolver = Callable[[str, int], list[str]]


class BadCallbackUrl(ValueError):
    """The URL cannot or may not receive webhooks; the message says why, for the client.

    ``final``: it never will (a forbidden address, a malformed URL); a name that does not
    resolve now may resolve later, so a delivery tries it again.
    """

    def __init__(self, message: str, *, final: bool = True) -> None:
        super().__init__(message)
        self.final = final


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL's parts and the checked address to use."""

    scheme: str
    host: str  # as written in the URL (the Host header, TLS's server name)
    port: int
    path: str  # with its query
    address: str  # the IP address connected to


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system's resolver, /etc/hosts included)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # an IP's text for AF_INET(6)


def check_callback_url(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> str:
    """``url`` if webhooks may be sent to it now.

    :raises BadCallbackUrl: not http(s), no host, credentials in it, too long, a host that does
        not resolve, or one that resolves to an address webhooks may not reach.
    """
    resolve_for_delivery(url, allow_private=allow_private, resolver=resolver)
    return url


def resolve_for_delivery(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Target:
    """The URL's parts and the address to connect to: the first the host resolves to, once
    every one of them is allowed (a name with one private address among public ones is refused:
    which one a client picks is not ours to know).

    :raises BadCallbackUrl: as :func:`check_callback_url`.
    """
    parts = _parts(url)
    host = _ascii_host(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise BadCallbackUrl(f"callback_url's host {host!r} does not resolve", final=False) from exc
    if not addresses:
        raise BadCallbackUrl(f"callback_url's host {host!r} does not resolve", final=False)
    if not allow_private:
        for address in addresses:
            why = forbidden(address)
            if why:
                raise BadCallbackUrl(
                    f"callback_url's host {host!r} resolves to {address}, {why}: webhooks are "
                    "sent only to public addresses"
                )
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(parts.scheme, host, port, path, addresses[0])


def _parts(url: str):
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
        raise BadCallbackUrl(
            f"callback_url must be an http(s) URL of at most {MAX_URL_CHARS} characters"
        )
    if not url.isprintable() or any(c.isspace() for c in url):
        raise BadCallbackUrl("callback_url must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise BadCallbackUrl(f"callback_url is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BadCallbackUrl("callback_url must start with https:// or http://")
    if not parts.hostname:
        raise BadCallbackUrl("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise BadCallbackUrl(
            "callback_url must not hold credentials (user:password@); verify the signature "
            "instead, or put a token in the path or query"
        )
    if parts.fragment:
        raise BadCallbackUrl("callback_url must not have a #fragment")
    if parts.port == 0:
        raise BadCallbackUrl("callback_url's port must be 1 to 65535")
    _ascii_host(parts.hostname)
    return parts


def _ascii_host(host: str) -> str:
    """The host as DNS, ``Host`` and TLS want it: an internationalised name in its ``xn--``
    form (IDNA), an address as written.

    :raises BadCallbackUrl: a name IDNA cannot encode.
    """
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadCallbackUrl(f"callback_url's host {host!r} is not a valid host name") from None


def forbidden(address: str) -> str | None:
    """Why webhooks may not reach ``address`` (None: they may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return forbidden(str(embedded))
        if ip in _NAT64:
            return forbidden(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # 100.100.100.200: Alibaba Cloud's metadata
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
