"""One attempt against a real HTTP server on loopback: the POST goes to the address that was
checked — a name that resolves elsewhere since (DNS rebinding) is refused, never connected."""

from __future__ import annotations

import socket
import threading

import pytest

from app.webhooks.delivery import attempt
from app.webhooks.outbox import Claimed
from tests.support.receiver import Receiver
from tests.unit.app.webhooks.test_signing import SPEC_SECRET


@pytest.fixture
def receiver():
    made = Receiver(SPEC_SECRET)
    yield made
    made.close()


def claimed(url: str) -> Claimed:
    return Claimed("msg_test", url, '{"type":"job.done"}', 1)


def test_the_post_goes_to_the_checked_address_with_the_name_as_host(receiver):
    # hooks.example.com does not resolve here: reaching the receiver proves the name was not
    # looked up again, only the address the check returned was connected to.
    url = f"http://hooks.example.com:{receiver.port}/ok"
    outcome = attempt(
        claimed(url),
        secret=SPEC_SECRET,
        timeout_s=5,
        allow_private=True,
        resolver=lambda host, port: ["127.0.0.1"],
    )
    assert outcome.status_code == 204 and outcome.delivered
    [message] = receiver.on("/ok")
    assert message.verified and message.headers["host"] == f"hooks.example.com:{receiver.port}"
    assert message.body == b'{"type":"job.done"}'


def test_a_name_rebound_to_loopback_is_not_sent(receiver):
    url = f"http://hooks.example.com:{receiver.port}/ok"
    outcome = attempt(
        claimed(url),
        secret=SPEC_SECRET,
        timeout_s=5,
        allow_private=False,
        resolver=lambda host, port: ["127.0.0.1"],
    )
    assert outcome.status_code is None and not outcome.worth_retrying
    assert outcome.error.startswith("not sent:") and "loopback" in outcome.error
    assert receiver.received == []


def test_answers_and_silences(receiver):
    def outcome_of(path, timeout_s=5.0):
        return attempt(
            claimed(receiver.url(path)), secret=SPEC_SECRET, timeout_s=timeout_s, allow_private=True
        )

    flaky = outcome_of("/flaky")
    assert (flaky.status_code, flaky.worth_retrying, flaky.delivered) == (503, True, False)
    gone = outcome_of("/gone")
    assert (gone.status_code, gone.worth_retrying) == (410, False)
    silent = outcome_of("/hang", timeout_s=1)
    assert silent.status_code is None and silent.error == "no answer within 1 s"
    assert silent.worth_retrying
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = attempt(
        claimed(f"http://127.0.0.1:{port}/"), secret=SPEC_SECRET, timeout_s=5, allow_private=True
    )
    assert refused.error == "could not connect (connection refused)" and refused.worth_retrying
    unsigned = attempt(claimed(receiver.url("/ok")), secret=None, timeout_s=5, allow_private=True)
    assert "WEBHOOK_SECRET is not set" in unsigned.error
    assert unsigned.worth_retrying  # the operator may set it within the day of retries
    assert receiver.on("/ok") == []


def raw_server(answer: list[tuple[bytes, float]]) -> tuple[int, threading.Event]:
    """A TCP server on loopback that reads a request, then sends each ``(bytes, pause)``;
    returns its port and an event that stops it."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with listener:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                with client:
                    client.settimeout(5)
                    client.recv(65536)
                    for data, pause in answer:
                        if stop.wait(pause):
                            break
                        try:
                            client.sendall(data)
                        except OSError:
                            break

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], stop


def post_to(port: int, timeout_s: float = 5):
    return attempt(
        claimed(f"http://127.0.0.1:{port}/"),
        secret=SPEC_SECRET,
        timeout_s=timeout_s,
        allow_private=True,
    )


def bounded(call, limit_s: float = 60):
    """``call()`` in a thread; a call still running after ``limit_s`` fails the test (it
    would be one holding a delivery thread without end)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), "the attempt did not end"
    return result[0]


def test_a_receiver_trickling_its_headers_is_cut_at_the_deadline():
    trickle = [(b"HTTP/1.1 200 OK\r\n", 0)] + [(b"X", 0.3)] * 1000
    port, stop = raw_server(trickle)
    try:
        outcome = bounded(lambda: post_to(port, timeout_s=1))
    finally:
        stop.set()
    assert outcome.status_code is None and outcome.error == "no answer within 1 s"
    assert outcome.worth_retrying


def test_what_a_receiver_says_is_kept_printable():
    answer = [(b"HTTP/1.1 500 x\r\nContent-Length: 12\r\n\r\nbad\x00\x1b[31mX\n!", 0)]
    port, stop = raw_server(answer)
    try:
        outcome = bounded(lambda: post_to(port))
    finally:
        stop.set()
    assert outcome.status_code == 500 and outcome.worth_retrying
    assert outcome.error.isprintable() and outcome.error.startswith("bad")


def test_not_http_and_cut_answers_are_tried_again():
    for answer in ([(b"SSH-2.0-OpenSSH_9.2\r\n", 0)], [(b"HTTP/1.1 2", 0)]):
        port, stop = raw_server(answer)
        try:
            outcome = bounded(lambda p=port: post_to(p))
        finally:
            stop.set()
        assert outcome.status_code is None and outcome.worth_retrying, outcome
        assert outcome.error.startswith(("the answer was not HTTP", "the connection was cut"))


def test_a_name_that_stops_resolving_is_tried_again():
    def fails(host, port):
        raise OSError("Temporary failure in name resolution")

    outcome = attempt(
        claimed("https://hooks.example.com/in"),
        secret=SPEC_SECRET,
        timeout_s=5,
        allow_private=False,
        resolver=fails,
    )
    assert "does not resolve" in outcome.error and outcome.worth_retrying


def test_an_international_name_goes_out_in_its_ascii_form(receiver):
    url = f"http://bücher.example:{receiver.port}/ok"
    ascii_only = lambda host, port: ["127.0.0.1"] if host.isascii() else []  # noqa: E731
    outcome = attempt(
        claimed(url), secret=SPEC_SECRET, timeout_s=5, allow_private=True, resolver=ascii_only
    )
    assert outcome.delivered, outcome
    [message] = receiver.on("/ok")
    assert message.headers["host"] == f"xn--bcher-kva.example:{receiver.port}"


def test_a_redirect_is_not_followed():
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        outcome = attempt(claimed(url), secret=SPEC_SECRET, timeout_s=5, allow_private=True)
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.status_code == 307 and not outcome.worth_retrying
    assert outcome.error.startswith("redirects are not followed")
