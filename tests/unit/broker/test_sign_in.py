"""What of a NATS URL may be shown: never its token or password."""

from __future__ import annotations

from broker.sign_in import shown


def test_a_urls_token_or_password_is_never_shown():
    assert shown("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    assert shown("nats://s3cret@a:4222, tls://user:pa@ss@b:4443") == (
        "nats://***@a:4222, tls://***@b:4443"
    )
    assert shown(["nats://u:p@h:1", "nats://h:2"]) == "nats://***@h:1, nats://h:2"
