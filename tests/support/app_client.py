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


def check_byte_ranges(client, url: str) -> bytes:
    """``url`` (a stored file, through the API) answers byte ranges as RFC 9110 says — the
    checks every storage backend's downloads pass. Returns the whole file."""
    whole = client.get(url)
    assert whole.status_code == 200, whole.status
    data, size, etag = whole.data, len(whole.data), whole.headers["ETag"]
    assert whole.headers["Accept-Ranges"] == "bytes" and etag.startswith('"')
    assert int(whole.headers["Content-Length"]) == size > 100
    for asked, start, end in (
        ("bytes=0-9", 0, 9),
        (f"bytes={size - 50}-{size + 1000}", size - 50, size - 1),  # clipped to the end
        (f"bytes={size // 2}-", size // 2, size - 1),
        ("bytes=-7", size - 7, size - 1),
        (f"bytes=-{size + 5}", 0, size - 1),  # longer than the file: all of it
        (f"bytes={size - 1}-{size - 1}", size - 1, size - 1),
    ):
        part = client.get(url, headers={"Range": asked})
        assert part.status_code == 206, (asked, part.status)
        assert part.headers["Content-Range"] == f"bytes {start}-{end}/{size}", asked
        assert int(part.headers["Content-Length"]) == end - start + 1, asked
        assert part.data == data[start : end + 1], asked
        assert part.headers["ETag"] == etag and part.headers["Accept-Ranges"] == "bytes"
    for asked in (
        f"bytes={size}-",
        f"bytes={size + 10}-{size + 20}",
        "bytes=-0",
        "bytes=" + "9" * 5000 + "-",
    ):
        refused = client.get(url, headers={"Range": asked})
        assert refused.status_code == 416, (asked, refused.status)
        assert refused.headers["Content-Range"] == f"bytes */{size}"
        assert refused.json["error"]["code"] == "range_not_satisfiable"
        assert len(refused.json["error"]["message"]) < 200  # the header is not echoed whole
    # Not a range we answer: the whole file (malformed, another unit, several, stale If-Range).
    for headers in (
        {"Range": "bytes=abc"},
        {"Range": "bytes=9-2"},
        {"Range": "items=0-5"},
        {"Range": "bytes=0-1,5-6"},
        {"Range": "bytes=0-9", "If-Range": '"an-older-version"'},
        {"Range": "bytes=0-9", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"},
    ):
        full = client.get(url, headers=headers)
        assert full.status_code == 200 and full.data == data, headers
    fresh = client.get(url, headers={"Range": "bytes=3-5", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.data == data[3:6]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    head = client.head(url, headers={"Range": "bytes=10-19"})
    assert head.status_code == 206 and head.headers["Content-Length"] == "10" and not head.data
    return data
