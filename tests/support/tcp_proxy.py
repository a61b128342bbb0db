"""A TCP proxy in front of a server, for tests that need a connection to break where they say:
every connection can be cut now (:meth:`TcpProxy.cut_all`), or the next one once its client has
sent some bytes (:meth:`TcpProxy.cut_next_after`); what each client sent is kept (the requests'
headers can be read back) and the bytes the server sent back are counted."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Connection:
    client: socket.socket
    upstream: socket.socket
    #: Everything the client sent on this connection.
    sent: bytearray = field(default_factory=bytearray)
    #: Bytes the server sent back on it.
    received: int = 0
    #: Cut once the client has sent more than this many bytes (None: never).
    cut_after: int | None = None
    #: Cut once this many bytes of the server's answer have been passed on (None: never).
    cut_after_received: int | None = None
    cut: bool = False

    def close(self) -> None:
        self.cut = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    """Listens on a free port of 127.0.0.1 and forwards each connection to ``port``."""

    def __init__(self, port: int) -> None:
        self.upstream_port = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._cut_next: int | None = None
        self._cut_next_received: int | None = None
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_next_after(self, sent_bytes: int) -> None:
        """The next connection is cut once its client has sent more than ``sent_bytes``."""
        with self._lock:
            self._cut_next = sent_bytes

    def cut_next_answer_after(self, received_bytes: int) -> None:
        """The next connection is cut once ``received_bytes`` of the server's answer have been
        passed on to the client."""
        with self._lock:
            self._cut_next_received = received_bytes

    def cut_all(self) -> None:
        """Break every open connection now."""
        with self._lock:
            open_now = [c for c in self.connections if not c.cut]
        for connection in open_now:
            connection.close()

    def requests_with(self, text: str) -> list[bytes]:
        """What the connections whose client sent ``text`` sent."""
        with self._lock:
            return [bytes(c.sent) for c in self.connections if text.encode() in c.sent]

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                connection = Connection(
                    client,
                    upstream,
                    cut_after=self._cut_next,
                    cut_after_received=self._cut_next_received,
                )
                self._cut_next = self._cut_next_received = None
                self.connections.append(connection)
            threading.Thread(target=self._up, args=(connection,), daemon=True).start()
            threading.Thread(target=self._down, args=(connection,), daemon=True).start()

    def _up(self, connection: Connection) -> None:
        while True:
            try:
                data = connection.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if connection.cut_after is not None:
                room = connection.cut_after - len(connection.sent)
                if len(data) > room:
                    with self._lock:
                        connection.sent += data[: max(room, 0)]
                    if room > 0:
                        with contextlib.suppress(OSError):
                            connection.upstream.sendall(data[:room])
                    connection.close()
                    return
            with self._lock:
                connection.sent += data
            try:
                connection.upstream.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            connection.upstream.shutdown(socket.SHUT_WR)

    def _down(self, connection: Connection) -> None:
        while True:
            try:
                data = connection.upstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            limit = connection.cut_after_received
            if limit is not None and connection.received + len(data) >= limit:
                data = data[: limit - connection.received]
                connection.received += len(data)
                with contextlib.suppress(OSError):
                    connection.client.sendall(data)
                break
            connection.received += len(data)
            try:
                connection.client.sendall(data)
            except OSError:
                break
        connection.close()
