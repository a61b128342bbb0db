"""``Retry-After`` read in both of its forms, and the backoff used without one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.client.retries import RetryPolicy, parse_retry_after

NOW = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Mon, 07 Dec 2026 06:00:30 GMT", 30.0),  # an HTTP-date, 30 s after NOW
        ("Mon, 07 Dec 2026 05:59:00 GMT", 0.0),  # in the past: at once, never negative
        ("Monday, 07-Dec-26 06:01:00 GMT", 60.0),  # RFC 850's form, which HTTP-date allows
    ],
)
def test_seconds_and_dates(header, seconds):
    assert parse_retry_after(header, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026"])
def test_unreadable_is_none(header):
    assert parse_retry_after(header, NOW) is None


def test_backoff_doubles_up_to_its_cap():
    policy = RetryPolicy(backoff_s=0.5, backoff_max_s=3.0)
    assert [policy.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
