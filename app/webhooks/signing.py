"""Standard Webhooks signatures (https://www.standardwebhooks.com/): what a receiver checks.

Each message carries ``webhook-id`` (the same on every attempt), ``webhook-timestamp`` (Unix
seconds of this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` of
``"<id>.<timestamp>.<body>"`` keyed with the bytes of ``WEBHOOK_SECRET`` after ``whsec_``
(base64). The receiver recomputes it, compares in constant time, and refuses a timestamp far
from its clock (a replay). docs/api.md shows the receiver's side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret (checked by :func:`app.config.webhook_key_ok`)."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, body: bytes, now: float | None = None) -> dict:
    """The three headers of one attempt, timestamped now."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
