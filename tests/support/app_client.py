"""Calls the API tests make."""

from __future__ import annotations

import io
import time


def upload(client, data: bytes, name="My Song.flac", headers=None, **form):
    return client.post(
        "/api/uploads",
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
        headers=headers or {},
    )


def wait_done(client, upload_id: str, timeout=120, headers=None):
    """The analysis response once it is no longer 202 (pending)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/uploads/{upload_id}/analysis", headers=headers or {})
        if response.status_code != 202:
            return response
        time.sleep(0.2)
    raise AssertionError("analysis never finished")
