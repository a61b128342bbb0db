"""Reading a NATS server's timestamps, and the age of a backlog."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broker.backlog import QueueBacklog, parse_server_time

EPOCH_2026 = datetime(2026, 12, 6, 21, 38, 7, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T21:38:07.123456789Z", EPOCH_2026 + 0.123456789),  # Go's nanoseconds
        ("2026-12-06T21:38:07.5Z", EPOCH_2026 + 0.5),  # trailing zeros trimmed
        ("2026-12-06T21:38:07Z", EPOCH_2026),  # no fraction at all
        ("2026-12-06T22:38:07.25+01:00", EPOCH_2026 + 0.25),
    ],
)
def test_server_times_are_read_to_the_microsecond(text, expected):
    assert parse_server_time(text) == pytest.approx(expected, abs=1e-6)


def test_a_time_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_server_time("yesterday")


def test_the_age_is_zero_when_nothing_waits_and_never_negative():
    assert QueueBacklog(0, 3, None).oldest_waiting_age(EPOCH_2026) == 0
    waiting = QueueBacklog(2, 0, EPOCH_2026)
    assert waiting.oldest_waiting_age(EPOCH_2026 + 42.5) == 42.5
    assert waiting.oldest_waiting_age(EPOCH_2026 - 1) == 0  # this host's clock behind
