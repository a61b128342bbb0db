"""A blocking JetStream publisher: one plain socket per thread, for ``enqueue``'s hot path.

``enqueue`` must wait for JetStream's acknowledgement. Here the calling thread writes ``HPUB``
and reads the reply on its own :class:`~broker.wire.WireConnection`: no locks, no thread hops.
Each thread (and each process, after ``fork()``) has its own socket, opened on first use and
dropped on any error so the next call reconnects. Servers needing TLS or nkeys raise
:class:`~broker.wire.WireUnsupported` and the broker falls back to the asyncio client.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

from broker.sign_in import NatsSignIn
from broker.wire import WireConnection, WireUnsupported, connect_first, encode_publish

#: Kept for callers that name the old exception.
PublisherUnsupported = WireUnsupported


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


class BlockingPublisher:
    """Publish to JetStream and wait for the acknowledgement, from any thread.

    :param servers: NATS URLs; the first that answers is used.
    :param timeout: seconds to wait for a connection or an acknowledgement.
    :param sign_in: signs the server's nonce (a ``.creds`` file, an nkey seed).
    """

    def __init__(
        self, servers: list[str], timeout: float = 2.0, sign_in: NatsSignIn | None = None
    ) -> None:
        self.servers = servers
        self.timeout = timeout
        self.sign_in = sign_in
        self._local = threading.local()

    def publish(
        self, subject: str, payload: bytes, *, msg_id: str, stream: str | None = None
    ) -> PubAck:
        """Store one message.

        :raises PublishRejected: JetStream refused it.
        :raises WireUnsupported: the server needs TLS or other auth; use another client.
        :raises OSError: the connection failed or timed out (safe to retry with the same id).
        """
        headers = b"NATS/1.0\r\nNats-Msg-Id: " + msg_id.encode() + b"\r\n"
        if stream:
            headers += b"Nats-Expected-Stream: " + stream.encode() + b"\r\n"
        headers += b"\r\n"
        conn = self._connection()
        self._local.counter += 1
        reply = b"%s.%d" % (conn.inbox, self._local.counter)
        try:
            conn.send(encode_publish(subject.encode(), payload, reply, headers))
            frame = self._await_reply(conn, reply)
        except (OSError, ValueError):
            self._drop()
            raise
        if frame.status == 503:
            raise PublishRejected("no stream for this subject", 503)
        answer = json.loads(frame.payload)
        if "error" in answer:
            error = answer["error"]
            raise PublishRejected(error.get("description", str(error)), error.get("code"))
        return PubAck(answer["stream"], int(answer["seq"]), bool(answer.get("duplicate")))

    def _await_reply(self, conn: WireConnection, reply: bytes):
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("JetStream did not acknowledge the message in time")
            for frame in conn.read(remaining):
                if frame.subject == reply:
                    return frame
                # else: a late answer to a publish that timed out before; ignore it

    def _connection(self) -> WireConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = connect_first(self.servers, self.timeout, "dramatiq-publisher", self.sign_in)
        self._local.conn, self._local.pid, self._local.counter = conn, os.getpid(), 0
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def close(self) -> None:
        """Close this thread's socket (other threads close theirs when they end)."""
        self._drop()
