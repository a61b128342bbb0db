"""A webhook receiver for tests: a real HTTP server on a free loopback port that checks every
message's signature with its own implementation of Standard Webhooks (written from the
specification, not from ours) and answers as each path is told to.

Paths: ``/ok`` 204; ``/flaky`` 503 the first time, then 200; ``/gone`` 410; ``/hang`` holds the
request until :attr:`Receiver.release` is set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The spec's advice: refuse a message whose timestamp is further than this from now.
TOLERANCE_S = 300


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification: the key is the base64 after ``whsec_``; the signed
    content ``{webhook-id}.{webhook-timestamp}.{body}``; ``webhook-signature`` a space-separated
    list of ``v1,<base64>``, any of which may match; the timestamp within tolerance."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for candidate in headers.get("webhook-signature", "").split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.release = threading.Event()
        self.hanging = 0
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.split("?")[0]
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, headers, body, verify(receiver.secret, headers, body))
                    )
                    receiver._seen[path] += 1
                    seen = receiver._seen[path]
                status = receiver._answer(path, seen)
                self.send_response(status)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"thank")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, path: str, seen: int) -> int:
        if path == "/flaky":
            return 503 if seen == 1 else 200
        if path == "/gone":
            return 410
        if path == "/hang":
            with self._lock:
                self.hanging += 1
            self.release.wait(60)
            with self._lock:
                self.hanging -= 1
            return 200
        return 204

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.split("?")[0] == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(path)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{path} received {len(self.on(path))} of {count} webhooks")

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
