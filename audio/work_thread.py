"""A thread that encodes (or measures) while the caller decodes.

LAME (through ``lameenc``) releases the GIL while it encodes, and so do NumPy's and SciPy's
array loops; MP3 encoding is most of a transcode's time. With the encoder on a thread of its
own, the decode, the analysis and the limiter run beside it instead of before it; with the
limiter's profile of the source on one (:mod:`audio.limiter_estimate`), beside the analysis.
:class:`WorkThread` takes work items through a short queue (a few blocks:
memory stays bounded whatever the file's length) and hands the first error it meets back to
the caller, at the next :meth:`WorkThread.put` or at :meth:`WorkThread.finish`, as the
exception the work raised.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

#: Blocks waiting for the encoder at most: 4 × 64 Ki frames of float32 stereo is 2 MB.
DEPTH = 4
_END = object()


class WorkThread:
    """Run ``work(item)`` for every item put, in order, on one daemon thread."""

    def __init__(self, work: Callable[[Any], None], name: str = "encoder") -> None:
        self._work = work
        self._queue: queue.Queue = queue.Queue(DEPTH)
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        """Queue ``item`` (waiting while the queue is full); raise the thread's error if it
        has failed (then nothing more is encoded)."""
        while True:
            self._raise_error()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():  # failed while the queue was full
                    self._raise_error()

    def finish(self) -> None:
        """Wait until every item is encoded; raise the thread's error if it failed."""
        if self._thread.is_alive():
            self._put_end()
            self._thread.join()
        self._raise_error()

    def abandon(self) -> None:
        """Stop without encoding what is queued and wait for the thread; raise nothing (the
        caller is handling the error that made it give up)."""
        self._abandoned = True
        if self._thread.is_alive():
            self._put_end()
            self._thread.join()

    def _put_end(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._abandoned or self._error is not None:
                continue  # drain until the end marker
            try:
                self._work(item)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc


class Inline:
    """:class:`WorkThread`'s interface, working each item at once on the caller's thread: for a
    process whose cores are all taken by other workers, where a second thread only adds
    switching (0.4–0.5 s more CPU on a 180 s analysis + MP3 sharing one core)."""

    def __init__(self, work: Callable[[Any], None], name: str = "inline") -> None:
        self._work = work
        self._failed = False

    def put(self, item: Any) -> None:
        if not self._failed:
            try:
                self._work(item)
            except BaseException:
                self._failed = True
                raise

    def finish(self) -> None:
        pass

    def abandon(self) -> None:
        self._failed = True


class Worker(Protocol):
    """What :class:`WorkThread` and :class:`Inline` both are: items handed over one by one,
    an error of the work raised at a later ``put`` or at ``finish``."""

    def put(self, item: Any) -> None: ...

    def finish(self) -> None: ...

    def abandon(self) -> None: ...


def worker(work: Callable[[Any], None], name: str, threaded: bool) -> Worker:
    """A :class:`WorkThread`, or :class:`Inline` when not ``threaded``."""
    return WorkThread(work, name) if threaded else Inline(work, name)


def spare_cores(busy: int) -> bool:
    """Whether this process may use more cores than ``busy`` processes of the same kind
    take (its CPU affinity): then an encoder's own thread runs beside the decode."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return busy < usable
