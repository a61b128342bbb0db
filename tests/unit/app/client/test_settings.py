"""A client needs the server's URL and a token: from ``PHANTOMCHAIN_URL`` and
``PHANTOMCHAIN_TOKEN``, or given; nothing else."""

from __future__ import annotations

import pytest

from app.client import Client, PhantomChainError, Timeouts


def test_from_the_environment_and_given_values_win():
    env = {"PHANTOMCHAIN_URL": "http://audio.example:8080", "PHANTOMCHAIN_TOKEN": "t1"}
    client = Client.from_env(env)
    assert client.url == "http://audio.example:8080"
    assert client._http._headers["Authorization"] == "Bearer t1"
    other = Client.from_env(env, url="https://elsewhere.example", token="t2", timeout=3)
    assert other.url == "https://elsewhere.example"
    assert other._http._headers["Authorization"] == "Bearer t2"
    assert other._http.timeouts == Timeouts(3, 3)


def test_no_token_sends_none_and_no_url_is_an_error():
    client = Client.from_env({"PHANTOMCHAIN_URL": "http://127.0.0.1:8080"})
    assert "Authorization" not in client._http._headers
    with pytest.raises(PhantomChainError, match="PHANTOMCHAIN_URL"):
        Client.from_env({})
    with pytest.raises(PhantomChainError, match="http:// or https://"):
        Client("audio.example:8080")


def test_the_token_goes_to_the_server_only():
    client = Client("http://audio.example:8080/", "secret")
    ours = client._http._headers_for("http://audio.example:8080/api/jobs/x", {})
    theirs = client._http._headers_for("https://bucket.s3.example/key?sig=1", {})
    assert ours["Authorization"] == "Bearer secret" and "Authorization" not in theirs


@pytest.mark.parametrize(
    "url", ["http://bob:hunter2@audio.example", "bob:hunter2@audio.example:8080", "ftp://hunter2@x"]
)
def test_a_url_holding_a_password_is_refused_without_showing_it(url):
    with pytest.raises(PhantomChainError, match="must not hold a user or password") as raised:
        Client(url)
    assert "hunter2" not in str(raised.value)
