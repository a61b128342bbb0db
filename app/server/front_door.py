"""The public listener: waitress, set so that slow or idle clients cannot hold the API.

waitress reads every request — headers and body — on one asynchronous loop, and hands it to a
thread of the pool (``WEB_THREADS``) only once it has all of it (a body over
``inbuf_overflow`` waits in a temporary file, not in memory). A client that sends half a
request, or nothing, costs a socket and a few bytes, never a thread; that is why it replaced
gunicorn's gthread workers, where such a client held a thread (64 of them made ``/healthz``
time out). What is bounded here:

* ``READ_TIMEOUT_S``: a connection that sends nothing for that long while no request of its
  is being answered is closed (waitress's ``channel_timeout``), and so is one that has not
  finished its request's headers that long after their first byte, however slowly it drips
  them (:class:`FrontDoor`);
* ``WEB_CONNECTION_LIMIT``: connections open at once; past it new ones wait in the backlog;
* request headers: :data:`MAX_HEADER_BYTES`; bodies: ``MAX_UPLOAD_MB`` and a little
  (:func:`body_limit`), so a body declared a little too large is still answered by the app's
  JSON 413 while a larger one is refused before a byte of it is read.

Errors the server answers itself (a malformed request, headers or body too large) are JSON in
the API's own shape, with the same protective headers as every other answer.
"""

from __future__ import annotations

import json
import time
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from app.config import Config
from app.http.headers import LOCKED_DOWN

#: Request line and headers together; a bearer token and the usual headers need a few KB.
MAX_HEADER_BYTES = 64 * 1024
#: Above ``MAX_UPLOAD_MB``, room for the multipart framing and the form's other fields: within
#: it the app reads the declared length and answers its own 413.
BODY_SLACK_BYTES = 1024 * 1024
#: Bytes read from a socket at a time (waitress's default is 8 KB): fewer turns of the loop for
#: large uploads.
RECV_BYTES = 64 * 1024


def body_limit(max_upload_mb: int) -> int:
    """The largest body the server reads (``max_request_body_size``)."""
    return max_upload_mb * 1024 * 1024 + BODY_SLACK_BYTES


def adjustments(config: Config, host: str) -> Adjustments:
    """The public listener's settings, from the configuration. Behind ``TRUSTED_PROXY``, the
    scheme and client address it forwards are believed: a request it received over HTTPS is
    HTTPS to the app (so the session cookie is marked Secure)."""
    proxy = {}
    if config.trusted_proxy:
        proxy = {
            "trusted_proxy": config.trusted_proxy,
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-for"},
            "clear_untrusted_proxy_headers": True,
        }
    return Adjustments(
        **proxy,
        host=host,
        port=config.port,
        threads=config.web_threads,
        connection_limit=config.web_connection_limit,
        channel_timeout=config.read_timeout_s,
        cleanup_interval=1,  # look for idle connections every second, not every 30
        max_request_header_size=MAX_HEADER_BYTES,
        max_request_body_size=body_limit(config.max_upload_mb),
        recv_bytes=RECV_BYTES,
        send_bytes=1,  # every write goes out at once: each event of a stream arrives when sent
        asyncore_use_poll=True,  # select() fails past 1024 descriptors; poll() has no limit
        ident="phantomchain",
        expose_tracebacks=False,
        log_socket_errors=False,  # a client that hangs up is not the server's error
    )


class TimedParser(HTTPRequestParser):
    """A request being read, with the time its first byte came (for the header deadline)."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()


class JsonErrorTask(ErrorTask):
    """An error the server answers itself, as the app would: ``{"error": {code, message}}``."""

    def execute(self) -> None:
        error = self.request.error
        message = str(error.body)
        if error.code == 413:
            message = self.channel.server.too_large_message
        body = json.dumps(
            {"error": {"code": error.reason.lower().replace(" ", "_"), "message": message}}
        ).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(
            [
                ("Content-Type", "application/json"),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", LOCKED_DOWN),
            ]
        )
        self.set_close_on_finish()
        self.content_length = len(body) + 1
        self.write(body + b"\n")


class Channel(HTTPChannel):
    """One client connection."""

    parser_class = TimedParser
    error_task_class = JsonErrorTask


class FrontDoor(TcpWSGIServer):
    """waitress's TCP server, with :class:`Channel` and a deadline for request headers."""

    channel_class = Channel

    def __init__(self, app: Any, socket_map: dict, config: Config, host: str) -> None:
        adj = adjustments(config, host)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adj.threads)
        self.too_large_message = (
            f"the upload is larger than MAX_UPLOAD_MB ({config.max_upload_mb} MB)"
        )
        super().__init__(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])

    def maintenance(self, now: float) -> None:
        """waitress closes connections idle for ``channel_timeout``; this also closes those
        still sending their headers that long after they began (one byte now and then keeps a
        connection from being idle, not from this)."""
        super().maintenance(now)
        cutoff = time.monotonic() - self.adj.channel_timeout
        for channel in self.active_channels.values():
            request = channel.request
            if request is not None and not request.headers_finished and request.started < cutoff:
                channel.will_close = True


def metrics_listener(app: Any, host: str, port: int) -> TcpWSGIServer:
    """A small server of its own (own loop, own two threads) for ``METRICS_PORT``: a busy
    public port never delays a scrape, and a scrape never takes a thread from requests."""
    adj = Adjustments(
        host=host,
        port=port,
        threads=2,
        connection_limit=50,
        channel_timeout=30,
        asyncore_use_poll=True,
        ident="phantomchain",
        log_socket_errors=False,
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    return TcpWSGIServer(app, {}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])
