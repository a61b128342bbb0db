"""When to try a call again, and how long to wait first.

The server says how long with ``Retry-After`` on a 429 (over a limit) and a 503 (a server of
its own away): a number of seconds or an HTTP-date (RFC 9110 §10.2.3). Without one, and after a
connection that failed, the wait doubles from :attr:`RetryPolicy.backoff_s` up to
:attr:`RetryPolicy.backoff_max_s`. A call gives up — raising what it met last — after
:attr:`RetryPolicy.max_retries` retries, or when the next wait would take its waits past
:attr:`RetryPolicy.max_wait_s` in all (a quota that frees in an hour is raised at once).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried (see the module's docstring)."""

    #: Retries after the first attempt (0: never retry).
    max_retries: int = 5
    #: Seconds a call may spend waiting between its attempts, in all.
    max_wait_s: float = 120.0
    #: The first wait when the server named none; doubled at each retry.
    backoff_s: float = 0.5
    #: The longest wait the doubling reaches.
    backoff_max_s: float = 10.0

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0 for the first) when the server named none."""
        return min(self.backoff_max_s, self.backoff_s * 2**retry)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds from ``now`` (never negative); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is in GMT; a date without a zone is taken as UTC
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
