"""Following a job to its end: its event stream while there is one, the job polled while not.

The stream (``GET /api/jobs/{id}/events``) sends each new event of the job's log, then an event
named after its end (``done``, ``failed``, ``canceled``) carrying the job. When it breaks (a
dropped connection, a server restarting, the server's ``EVENT_STREAM_MAX_S`` up), it is opened
again with ``Last-Event-ID``: the server carries on after the last event seen, so none is lost
and none comes twice. When it cannot be had — refused (429: the tenant's share of streams is
open; 503), or the server away — the job is polled (``GET /api/jobs/{id}``, whose events are
the same log) every ``poll_interval_s``, and the stream tried again after the server's
``Retry-After`` (or a backoff). Outages of the server's database or queue are waited out: the
job is kept there, and a follower only gives up at its own ``timeout``. A server that gives no
answer at all — its address refuses, or never answers — for longer than the retry policy's
``max_wait_s`` is given up on (:class:`ConnectionFailed`): a sender would otherwise wait for
good, saying nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Iterator

from app.client.errors import ApiError, ConnectionFailed, WaitTimeout
from app.client.events import SseParser
from app.client.http import Transport, json_of, path_of, read_chunks, read_model
from app.client.models import ENDED, Job, JobEvent

logger = logging.getLogger("app.client")

#: What a follower yields: each event of the job's log, then the ended job (last).
Update = JobEvent | Job


class Follower:
    """One job followed; :meth:`updates` does the work."""

    def __init__(
        self,
        transport: Transport,
        job_id: str,
        *,
        last_event_id: int = 0,
        poll_interval_s: float = 1.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.job_id = job_id
        self.last_id = last_event_id
        self.poll_interval_s = poll_interval_s
        self.deadline = None if timeout_s is None else clock() + timeout_s
        self.clock = clock
        self.failures = 0  # attempts in a row that got nothing: the backoff grows with them
        #: Whether the last stream was opened (one that breaks then is opened again at once)…
        self.opened = False
        #: …unless it broke before any event since the last time it broke.
        self.dropped = False
        #: Seconds before a stream the server ended is opened again (its ``retry:`` hint).
        self.reconnect_s = 0.5
        #: When the server last answered anything (clock): an answer is no outage of it.
        self.heard_at = clock()

    def updates(self) -> Iterator[Update]:
        """Each new event, then the ended job.

        :raises NotFound: no such job (or another tenant's); :raises Unauthorized: the token.
        :raises WaitTimeout: the job had not ended by the deadline.
        """
        stream_at = 0.0  # the stream may be tried again from then (clock)
        while True:
            if self.clock() >= stream_at:
                self.opened = False
                try:
                    ended = yield from self._stream()
                except (ConnectionFailed, ApiError) as exc:
                    self._raise_if_final(exc)
                    if self.opened and not self.dropped:
                        # dropped midway: opened again at once, after the last event seen (one
                        # that drops again before any event waits as a refused one does)
                        self.dropped = True
                        logger.info("job %s: event stream dropped (%s); resuming", self.job_id, exc)
                        continue
                    wait = self._wait_after(exc)
                    stream_at = self.clock() + wait
                    logger.info(
                        "job %s: event stream unavailable (%s); polling, stream again in %.1f s",
                        self.job_id,
                        exc,
                        wait,
                    )
                else:
                    if ended is not None:
                        yield ended
                        return
                    # the server ended the stream (its time was up): open it again, after the
                    # pause it asked for
                    self._sleep(self.reconnect_s)
                    continue
            ended = yield from self._poll()
            if ended is not None:
                yield ended
                return
            self._sleep(min(self.poll_interval_s, max(0.0, stream_at - self.clock())) or 0.05)

    def _stream(self) -> Generator[Update, None, Job | None]:
        """One event stream, read to its end; returns the ended job, or None when the stream
        ended before the job did."""
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = str(self.last_id)
        response = self.transport.request(
            "GET", path_of("api", "jobs", self.job_id, "events"), headers=headers,
            stream=True, retry_statuses=False, idempotent=False,
        )  # fmt: skip
        self.failures = 0
        self.opened = True
        self.heard_at = self.clock()
        parser = SseParser()
        for chunk in read_chunks(response):
            for event in parser.feed(chunk):
                if event.event == "progress":
                    update = read_model(JobEvent.from_json, _json(event.data))
                    self.dropped = False
                    if update.id > self.last_id:
                        self.last_id = update.id
                        yield update
                elif event.event in ENDED:
                    response.close()
                    return read_model(Job.from_json, _json(event.data))
            self._check_deadline()
        if parser.retry_ms is not None:
            self.reconnect_s = min(parser.retry_ms / 1000, self.transport.retry.max_wait_s)
        return None

    def _poll(self) -> Generator[Update, None, Job | None]:
        """The job once: its events not seen yet; the job when it has ended, else None. A
        server that does not answer now is no reason to stop following."""
        try:
            response = self.transport.request(
                "GET", path_of("api", "jobs", self.job_id), retry_statuses=False, idempotent=False
            )
            self.heard_at = self.clock()
            job = read_model(Job.from_json, json_of(response))
        except (ConnectionFailed, ApiError) as exc:
            self._raise_if_final(exc)
            wait = self._wait_after(exc)
            logger.info("job %s: could not look (%s); again in %.1f s", self.job_id, exc, wait)
            self._sleep(wait)
            return None
        self.failures = 0
        for event in job.events:
            if event.id > self.last_id:
                self.last_id = event.id
                yield event
        return job if job.ended else None

    def _raise_if_final(self, exc: Exception) -> None:
        """Errors that waiting does not cure: an unknown job, a bad token…; and no answer from
        the server for longer than ``max_wait_s``."""
        if isinstance(exc, ApiError):
            self.heard_at = self.clock()
            if exc.status not in (429, 502, 503, 504):
                raise exc
        elif self.clock() - self.heard_at > self.transport.retry.max_wait_s:
            unheard = self.clock() - self.heard_at
            raise ConnectionFailed(f"no answer from the server for {unheard:.0f} s: {exc}")

    def _wait_after(self, exc: Exception) -> float:
        """The server's ``Retry-After``, else a backoff; never more than the retry policy's
        ``max_wait_s`` (a server asking for days is not obeyed: the job is looked at again)."""
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        wait = self.transport.retry.backoff(self.failures)
        self.failures += 1
        return min(
            retry_after if retry_after is not None else wait, self.transport.retry.max_wait_s
        )

    def _sleep(self, seconds: float) -> None:
        self._check_deadline()
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - self.clock()))
        self.transport.sleep(seconds)
        self._check_deadline()

    def _check_deadline(self) -> None:
        if self.deadline is not None and self.clock() >= self.deadline:
            raise WaitTimeout(f"job {self.job_id} had not ended when the wait was up")


def _json(data: str) -> object:
    """An event's data; one that is not JSON is a stream gone wrong (it is opened again)."""
    try:
        return json.loads(data)
    except ValueError:
        raise ConnectionFailed(f"the event stream sent what is not JSON: {data[:100]!r}") from None
