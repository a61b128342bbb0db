"""Just enough of the NATS client protocol, over a plain blocking socket, for the hot paths.

Why not the asyncio client there? Every call from a Dramatiq thread into nats-py hops onto the
event-loop thread and back (wake the loop, run a task, wake the caller), which costs several
times the server's own work per message. The publisher (``enqueue``) and the pull consumer
(fetch, ack) speak the protocol themselves on sockets they own; the asyncio client keeps the
rare operations (stream management, dead letters, joins).

Spoken here: ``INFO``/``CONNECT`` (user/password or token from the URL, or the server's nonce
signed with a ``.creds`` file or an nkey seed: :class:`broker.sign_in.NatsSignIn`; headers on),
``SUB``, ``PUB``/``HPUB``, ``MSG``/``HMSG``, ``PING``/``PONG``, ``-ERR``. Servers that require TLS,
or a nonce signed when we have no key, raise :class:`WireUnsupported`; callers fall back to
nats-py. A sign-in the server refuses raises :class:`broker.sign_in.SignInRefused`.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
import uuid
from typing import NamedTuple
from urllib.parse import unquote, urlparse

from broker.sign_in import NatsSignIn, refusal


class WireUnsupported(Exception):
    """This server needs something this client does not speak (TLS, nkeys…)."""


class Frame(NamedTuple):
    """One message received on a subscription.

    :param subject: the subject it was delivered on (one of our inboxes).
    :param reply: the reply subject (for JetStream deliveries: the ack subject), or ``b""``.
    :param headers: the raw header block (``NATS/1.0 …``), or ``b""``.
    :param payload: the message body.
    """

    subject: bytes
    reply: bytes
    headers: bytes
    payload: bytes

    @property
    def status(self) -> int | None:
        """The status code of a status-only message (``NATS/1.0 408 …``), if it is one."""
        if not self.headers:
            return None
        first = self.headers.split(b"\r\n", 1)[0].split()
        if len(first) >= 2 and first[1].isdigit():
            return int(first[1])
        return None

    def header(self, name: bytes) -> bytes | None:
        """The value of header ``name`` (case-insensitive), if present."""
        wanted = name.lower() + b":"
        for line in self.headers.split(b"\r\n")[1:]:
            if line.lower().startswith(wanted):
                return line[len(wanted) :].strip()
        return None

    @property
    def description(self) -> str:
        first = self.headers.split(b"\r\n", 1)[0].split(maxsplit=2)
        return first[2].decode(errors="replace") if len(first) == 3 else ""


class WireConnection:
    """One socket to one NATS server.

    Reading belongs to one thread at a time; :meth:`send` may be called from any thread.

    :param url: ``nats://[user:pass@|token@]host:port``.
    :param timeout: seconds for connecting and for any single write.
    :param name: client name shown by the server.
    :param sign_in: signs the server's nonce where it sends one (its TLS files are not used:
        a server requiring TLS raises :class:`WireUnsupported`).
    :raises WireUnsupported: also for a ``tls://`` (or ``ws://``) URL, before connecting.
    """

    def __init__(
        self, url: str, timeout: float, name: str = "", sign_in: NatsSignIn | None = None
    ) -> None:
        self.sign_in = sign_in or NatsSignIn()
        parsed = urlparse(url if "://" in url else f"nats://{url}")
        if parsed.scheme != "nats":  # tls:// asks for TLS: never a plain socket (nor CONNECT)
            raise WireUnsupported(f"{parsed.scheme}:// is not spoken by the wire client")
        self.sock = socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=timeout
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inbox = f"_INBOX.{uuid.uuid4().hex}".encode()
        self._send_lock = threading.Lock()
        self._buffer = bytearray()
        self._chunk = bytearray(65536)
        self._chunk_view = memoryview(self._chunk)
        self._poller = select.poll()
        self._poller.register(self.sock, select.POLLIN)
        self.closed = False
        try:
            self._handshake(parsed, name, timeout)
        except BaseException:
            self.close()
            raise
        self.sock.settimeout(timeout)  # bounds a write to a server that stopped reading

    def _handshake(self, parsed, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        info_line = self._line(deadline)
        if not info_line.startswith(b"INFO "):
            raise ConnectionError(f"unexpected greeting from NATS: {info_line[:40]!r}")
        info = json.loads(info_line[5:])
        if info.get("tls_required"):
            raise WireUnsupported("server requires TLS")
        if info.get("nonce") and not self.sign_in.signs_nonce:
            raise WireUnsupported("server asks for a signed nonce and we have no key")
        if not info.get("headers", False):
            raise WireUnsupported("server does not support headers")
        connect: dict[str, object] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python-phantomchain",
            "version": "1",
            "name": name,
        }
        if parsed.username and parsed.password:
            connect["user"] = unquote(parsed.username)
            connect["pass"] = unquote(parsed.password)
        elif parsed.username:
            connect["auth_token"] = unquote(parsed.username)
        if info.get("nonce") and self.sign_in.signs_nonce:
            connect.update(self.sign_in.nonce_fields(info["nonce"]))
        self.send(
            b"CONNECT " + json.dumps(connect).encode() + b"\r\n"
            b"SUB " + self.inbox + b".* 1\r\nPING\r\n"
        )
        while True:
            line = self._line(deadline)
            if line.startswith(b"PONG"):
                return
            if line.startswith(b"-ERR"):
                error = ConnectionError(f"NATS refused the connection: {line.decode().strip()}")
                refused = refusal(error)
                if refused is not None:
                    raise refused
                raise error

    # -- writing -----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write ``data`` whole; safe from any thread."""
        with self._send_lock:
            self.sock.sendall(data)

    def publish(self, subject: bytes, payload: bytes, reply: bytes = b"", headers: bytes = b""):
        """Send one message (fire and forget)."""
        self.send(encode_publish(subject, payload, reply, headers))

    # -- reading -----------------------------------------------------------------------------

    def read(self, timeout: float) -> list[Frame]:
        """Messages that arrive within ``timeout`` seconds (at least one unless it runs out).

        Answers the server's ``PING``; raises ``ConnectionError`` on ``-ERR`` or a closed socket.
        """
        if self._buffer:
            frames = self._parse()
            if frames:
                return frames
        deadline = time.monotonic() + timeout
        remaining = timeout
        while remaining > 0 and self._fill(remaining):
            frames = self._parse()
            if frames:
                return frames
            remaining = deadline - time.monotonic()
        return []

    def _fill(self, timeout: float) -> bool:
        """Read what the socket has, waiting up to ``timeout``; False if nothing came."""
        if not self._poller.poll(max(0.0, timeout) * 1000):
            return False
        size = self.sock.recv_into(self._chunk)
        if not size:
            raise ConnectionError("NATS closed the connection")
        self._buffer += self._chunk_view[:size]
        return True

    def _line(self, deadline: float) -> bytes:
        """One protocol line, for the handshake (nothing else is in flight then)."""
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 2])
                del self._buffer[: end + 2]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._fill(remaining):
                raise TimeoutError("NATS did not answer the handshake in time")

    def _parse(self) -> list[Frame]:
        frames: list[Frame] = []
        buf = self._buffer
        pos = 0
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            with_headers = buf.startswith(b"HMSG ", pos)
            if with_headers or buf.startswith(b"MSG ", pos):
                parts = bytes(buf[pos:end]).split()
                size = int(parts[-1])
                start = end + 2
                if len(buf) < start + size + 2:
                    break  # the body has not all arrived yet
                pos = start + size + 2
                if with_headers:
                    split = start + int(parts[-2])
                    reply = parts[3] if len(parts) == 6 else b""
                    headers = bytes(buf[start:split])
                    frames.append(Frame(parts[1], reply, headers, bytes(buf[split : pos - 2])))
                else:
                    reply = parts[3] if len(parts) == 5 else b""
                    frames.append(Frame(parts[1], reply, b"", bytes(buf[start : pos - 2])))
                continue
            line = bytes(buf[pos:end])
            pos = end + 2
            if line.startswith(b"PING"):
                self.send(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                del buf[:pos]
                raise ConnectionError(f"NATS error: {line.decode(errors='replace').strip()}")
            # INFO updates, PONG and +OK need no answer.
        del buf[:pos]
        return frames

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()

    def __del__(self) -> None:
        # Per-thread connections (the publisher's) go when their thread ends: close the socket
        # then, rather than leave it to the garbage collector's "unclosed socket" warning.
        sock = getattr(self, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def encode_publish(
    subject: bytes, payload: bytes, reply: bytes = b"", headers: bytes = b""
) -> bytes:
    """The ``PUB``/``HPUB`` protocol line and body for one message."""
    if headers:
        sizes = b"%d %d" % (len(headers), len(headers) + len(payload))
        target = b"%s %s" % (subject, reply) if reply else subject
        return b"HPUB %s %s\r\n%s%s\r\n" % (target, sizes, headers, payload)
    if reply:
        return b"PUB %s %s %d\r\n%s\r\n" % (subject, reply, len(payload), payload)
    return b"PUB %s %d\r\n%s\r\n" % (subject, len(payload), payload)


def connect_first(
    servers: list[str], timeout: float, name: str = "", sign_in: NatsSignIn | None = None
) -> WireConnection:
    """A connection to the first server in ``servers`` that answers.

    :raises WireUnsupported: the server needs TLS or other auth.
    :raises broker.sign_in.SignInRefused: the server refused our sign-in.
    :raises ConnectionError: none answered.
    """
    last_error: Exception | None = None
    for url in servers:
        try:
            return WireConnection(url, timeout, name, sign_in)
        except WireUnsupported:
            raise
        except (OSError, ValueError) as exc:
            last_error = exc
    raise ConnectionError(f"no NATS server answered: {last_error!r}")
