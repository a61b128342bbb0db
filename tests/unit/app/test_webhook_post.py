"""One attempt against a real HTTP server on loopback: the POST goes to the address that was
checked — a name that resolves elsewhere since (DNS rebinding) is refused, never connected."""

from __future__ import annotations

import socket
import threading

import pytest

from app.webhook_post import attempt
from app.webhooks import Claimed
from tests.receiver import Receiver
from tests.unit.app.test_webhook_signing import SPEC_SECRET


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
    outcome = attempt(claimed(url), secret=SPEC_SECRET, timeout_s=5, allow_private=True,
                      resolver=lambda host, port: ["127.0.0.1"])  # fmt: skip
    assert outcome.status_code == 204 and outcome.delivered
    [message] = receiver.on("/ok")
    assert message.verified and message.headers["host"] == f"hooks.example.com:{receiver.port}"
    assert message.body == b'{"type":"job.done"}'


def test_a_name_rebound_to_loopback_is_not_sent(receiver):
    url = f"http://hooks.example.com:{receiver.port}/ok"
    outcome = attempt(claimed(url), secret=SPEC_SECRET, timeout_s=5, allow_private=False,
                      resolver=lambda host, port: ["127.0.0.1"])  # fmt: skip
    assert outcome.status_code is None and not outcome.worth_retrying
    assert outcome.error.startswith("not sent:") and "loopback" in outcome.error
    assert receiver.received == []


def test_answers_and_silences(receiver):
    def outcome_of(path, timeout_s=5.0):
        return attempt(claimed(receiver.url(path)), secret=SPEC_SECRET, timeout_s=timeout_s,
                       allow_private=True)  # fmt: skip

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
    refused = attempt(claimed(f"http://127.0.0.1:{port}/"), secret=SPEC_SECRET, timeout_s=5,
                      allow_private=True)  # fmt: skip
    assert refused.error == "could not connect (connection refused)" and refused.worth_retrying
    unsigned = attempt(claimed(receiver.url("/ok")), secret=None, timeout_s=5, allow_private=True)
    assert unsigned.error.startswith("not sent:") and not unsigned.worth_retrying


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
