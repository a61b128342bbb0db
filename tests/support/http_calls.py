"""Calls on a running web process over a real socket: GET, a multipart upload (whole or
streamed), an event stream's blocks, waiting for a job to end."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

from tests.support.waiting import wait_for


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(port: int, path: str) -> dict:
    status, body = get(port, path)
    assert status == 200, body
    return json.loads(body)


def multipart(name: str) -> tuple[str, bytes, bytes]:
    """A multipart form with one ``file`` field named ``name``: its content type, and the bytes
    that go before and after the file's."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", head, tail


def upload(
    port: int, data: bytes, name: str = "song.flac", chunks=None, token: str | None = None
) -> tuple[int, dict]:
    """POST a multipart upload (as ``token``'s tenant, if given); ``chunks`` (an iterator of
    the body's pieces) streams it."""
    content_type, head, tail = multipart(name)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if chunks is None:
        connection.request("POST", "/api/uploads", head + data + tail, headers)
    else:
        headers["Content-Length"] = str(len(head) + len(data) + len(tail))
        connection.putrequest("POST", "/api/uploads")
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        connection.send(head)
        for piece in chunks(data):
            connection.send(piece)
        connection.send(tail)
    response = connection.getresponse()
    body = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, body


def sse_blocks(response: http.client.HTTPResponse) -> Iterator[list[str]]:
    """The stream's blocks (lines up to a blank line), each as soon as it has arrived."""
    block: list[str] = []
    while line := response.readline():
        line = line.decode().rstrip("\r\n")
        if line:
            block.append(line)
        elif block:
            yield block
            block = []


def wait_job(port: int, job_id: str, timeout: float = 180) -> dict:
    job: dict = {}

    def finished() -> bool:
        nonlocal job
        job = get_json(port, f"/api/jobs/{job_id}")
        return job["status"] in ("done", "failed")

    assert wait_for(finished, timeout, interval=0.2), job
    return job
