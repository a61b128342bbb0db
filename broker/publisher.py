"""A blocking JetStream publisher: one plain socket per thread, for ``enqueue``'s hot path.

Why not the asyncio client? ``enqueue`` must wait for JetStream's acknowledgement, and a round
trip through the event-loop thread (wake the loop, run a task, wake the caller) costs about three
times the server's own work. Here the calling thread writes ``HPUB`` and reads the reply on its
own connection: no locks, no thread hops. Each thread (and each process, after ``fork()``) has
its own socket, opened on first use and dropped on any error so the next call reconnects.

It speaks just enough of the NATS client protocol for this: ``CONNECT`` (with user/password or
token from the URL), ``SUB`` to a private inbox, ``HPUB``, answering ``PING``. Servers that
require TLS or other authentication are reported as :class:`PublisherUnsupported`, and the
broker falls back to the asyncio client.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlparse


class PublisherUnsupported(Exception):
    """This server needs something the blocking publisher does not speak (TLS, nkeys…)."""


class PublishRejected(Exception):
    """JetStream answered with an error (e.g. no stream for the subject)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PubAck:
    stream: str
    seq: int
    duplicate: bool


class _Link:
    """One socket to one server, owned by one thread."""

    def __init__(self, url: str, timeout: float) -> None:
        parsed = urlparse(url if "://" in url else f"nats://{url}")
        self.sock = socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=timeout
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        self.inbox = f"_INBOX.{uuid.uuid4().hex}"
        self.counter = 0
        info_line = self.reader.readline()
        if not info_line.startswith(b"INFO "):
            raise ConnectionError(f"unexpected greeting from NATS: {info_line[:40]!r}")
        info = json.loads(info_line[5:])
        if info.get("tls_required") or info.get("nonce"):
            self.close()
            raise PublisherUnsupported("server requires TLS or nkey authentication")
        if not info.get("headers", False):
            self.close()
            raise PublisherUnsupported("server does not support headers")
        connect: dict[str, object] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python-phantomchain",
            "version": "1",
        }
        if parsed.username and parsed.password:
            connect["user"] = unquote(parsed.username)
            connect["pass"] = unquote(parsed.password)
        elif parsed.username:
            connect["auth_token"] = unquote(parsed.username)
        self.sock.sendall(
            b"CONNECT " + json.dumps(connect).encode() + b"\r\n"
            b"SUB " + self.inbox.encode() + b".* 1\r\nPING\r\n"
        )
        while True:
            line = self._line()
            if line.startswith(b"PONG"):
                break
            if line.startswith(b"-ERR"):
                raise ConnectionError(f"NATS refused the connection: {line.decode().strip()}")

    def _line(self) -> bytes:
        line = self.reader.readline()
        if not line:
            raise ConnectionError("NATS closed the connection")
        return line

    def publish(self, subject: str, payload: bytes, headers: bytes) -> bytes:
        self.counter += 1
        reply = f"{self.inbox}.{self.counter}".encode()
        self.sock.sendall(
            b"HPUB %s %s %d %d\r\n%s%s\r\n"
            % (subject.encode(), reply, len(headers), len(headers) + len(payload), headers, payload)
        )
        while True:
            line = self._line()
            if line.startswith((b"MSG ", b"HMSG ")):
                parts = line.split()
                size = int(parts[-1])
                body = self.reader.read(size + 2)[:-2]
                if parts[1] != reply:
                    continue  # a late answer to a request that timed out
                if line.startswith(b"HMSG "):
                    header_len = int(parts[-2])
                    status = body[:header_len].split(b"\r\n", 1)[0]
                    if b" 503" in status:
                        raise PublishRejected("no stream for this subject", 503)
                    body = body[header_len:]
                return body
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ConnectionError(f"NATS error: {line.decode().strip()}")
            # INFO updates, PONGs and +OK need no answer.

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass


class BlockingPublisher:
    """Publish to JetStream and wait for the acknowledgement, from any thread.

    :param servers: NATS URLs; the first that answers is used.
    :param timeout: seconds to wait for a connection or an acknowledgement.
    """

    def __init__(self, servers: list[str], timeout: float = 2.0) -> None:
        self.servers = servers
        self.timeout = timeout
        self._local = threading.local()

    def publish(
        self, subject: str, payload: bytes, *, msg_id: str, stream: str | None = None
    ) -> PubAck:
        """Store one message.

        :raises PublishRejected: JetStream refused it.
        :raises PublisherUnsupported: the server needs TLS or other auth; use another client.
        :raises OSError: the connection failed or timed out (safe to retry with the same id).
        """
        headers = b"NATS/1.0\r\nNats-Msg-Id: " + msg_id.encode() + b"\r\n"
        if stream:
            headers += b"Nats-Expected-Stream: " + stream.encode() + b"\r\n"
        headers += b"\r\n"
        link = self._link()
        try:
            body = link.publish(subject, payload, headers)
        except (OSError, ValueError):
            self._drop()
            raise
        answer = json.loads(body)
        if "error" in answer:
            error = answer["error"]
            raise PublishRejected(error.get("description", str(error)), error.get("code"))
        return PubAck(answer["stream"], int(answer["seq"]), bool(answer.get("duplicate")))

    def _link(self) -> _Link:
        link = getattr(self._local, "link", None)
        if link is not None and self._local.pid == os.getpid():
            return link
        last_error: Exception | None = None
        for url in self.servers:
            try:
                link = _Link(url, self.timeout)
            except PublisherUnsupported:
                raise
            except (OSError, ValueError) as exc:
                last_error = exc
                continue
            self._local.link, self._local.pid = link, os.getpid()
            return link
        raise ConnectionError(f"no NATS server answered: {last_error!r}")

    def _drop(self) -> None:
        link = getattr(self._local, "link", None)
        if link is not None and self._local.pid == os.getpid():
            link.close()
        self._local.link = None

    def close(self) -> None:
        """Close this thread's socket (other threads close theirs when they end)."""
        self._drop()
