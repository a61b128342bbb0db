"""Signatures as Standard Webhooks defines them: the specification's own example, and a
receiver's check written here from the specification's text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from pathlib import Path

import pytest

from app.webhook_signing import signature, signed_headers

#: The example of the specification's reference libraries (standard-webhooks, "Verifying").
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_example():
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_headers_sign_id_timestamp_and_body():
    headers = signed_headers(SPEC_SECRET, "msg_1", b'{"a":1}', now=1_700_000_000.7)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == "1700000000"
    key = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    for changed in (
        ("msg_2", 1_700_000_000, b'{"a":1}'),
        ("msg_1", 1_700_000_001, b'{"a":1}'),
        ("msg_1", 1_700_000_000, b'{"a":2}'),
    ):
        assert signature(SPEC_SECRET, *changed) != headers["webhook-signature"]


def test_the_reference_library_accepts_our_messages():
    """The specification's own Python library (``standardwebhooks``) verifies what we send,
    and refuses it with a byte changed."""
    from standardwebhooks import Webhook
    from standardwebhooks.exceptions import WebhookVerificationError

    body = b'{"type":"job.done","job_id":"c2d"}'
    headers = signed_headers(SPEC_SECRET, "msg_abc", body)
    assert Webhook(SPEC_SECRET).verify(body, headers) == {"type": "job.done", "job_id": "c2d"}
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(body.replace(b"c2d", b"c2e"), headers)


def test_the_manuals_receiver_snippet_works():
    """The verification snippet docs/api.md tells receivers to copy, run as written."""
    manual = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", manual, flags=re.S)
    [snippet] = [b for b in blocks if "def verify(secret: str, headers: dict" in b]
    scope: dict = {}
    exec(snippet, scope)
    body = b'{"type":"job.failed"}'
    headers = signed_headers(SPEC_SECRET, "msg_readme", body)
    assert scope["verify"](SPEC_SECRET, headers, body)
    assert not scope["verify"](SPEC_SECRET, headers, body + b" ")
    assert not scope["verify"]("whsec_" + base64.b64encode(b"k" * 32).decode(), headers, body)
    stale = signed_headers(SPEC_SECRET, "msg_readme", body, now=time.time() - 3600)
    assert not scope["verify"](SPEC_SECRET, stale, body)
