"""The encoder's thread: an error there reaches the caller, and stopping leaves nothing behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import audio.mp3
from audio.transcode import AudioEncoder
from audio.work_thread import DEPTH, WorkThread
from tests.support.audio import signals


class Broken(RuntimeError):
    pass


def test_items_are_worked_in_order_and_finish_waits_for_all():
    done: list[int] = []
    thread = WorkThread(done.append)
    for i in range(50):
        thread.put(i)
    thread.finish()
    assert done == list(range(50))


def test_the_first_error_reaches_the_caller_at_put_or_finish():
    def work(item: int) -> None:
        if item == 3:
            raise Broken("disk full")

    thread = WorkThread(work)
    with pytest.raises(Broken, match="disk full"):
        for i in range(10_000):  # more than the queue holds: put must see the error
            thread.put(i)
    with pytest.raises(Broken):
        thread.finish()


def test_abandon_stops_a_busy_thread_without_raising():
    release = threading.Event()
    worked: list[int] = []

    def work(item: int) -> None:
        release.wait()
        worked.append(item)

    thread = WorkThread(work)
    for i in range(DEPTH):
        thread.put(i)
    release.set()
    thread.abandon()
    assert len(worked) <= DEPTH
    assert not thread._thread.is_alive()


def test_an_encoder_error_on_its_thread_is_raised_and_discard_removes_the_file(
    tmp_path, monkeypatch
):
    calls = {"n": 0}
    write = audio.mp3.Mp3Writer.write

    def failing(self, pcm):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        write(self, pcm)

    monkeypatch.setattr(audio.mp3.Mp3Writer, "write", failing)
    path = tmp_path / "out.mp3"
    encoder = AudioEncoder(path, "mp3", in_rate=44100, in_channels=2)
    block = signals.tone(440.0, 0.5, channels=2).astype(np.float32)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(200):
            encoder.write(block)
        encoder.close()
    encoder.discard()
    assert not path.exists()
