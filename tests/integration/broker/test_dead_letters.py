"""The dead-letter API: list, filter, get, replay, delete, purge, expiry."""

from __future__ import annotations

import dramatiq
import pytest

from tests.support.waiting import wait_for


@pytest.fixture
def failing(broker):
    """Two actors on two queues that fail without retries, and a switch to heal them."""
    healed = {"yes": False}
    done = []

    @dramatiq.actor(broker=broker, max_retries=0, queue_name="audio")
    def transcode(name):
        if not healed["yes"]:
            raise RuntimeError(f"cannot transcode {name}")
        done.append(("transcode", name))

    @dramatiq.actor(broker=broker, max_retries=0, queue_name="mail")
    def notify(name):
        if not healed["yes"]:
            raise RuntimeError(f"cannot notify {name}")
        done.append(("notify", name))

    return transcode, notify, healed, done


def test_list_filters_by_queue_and_actor(broker, worker, failing):
    transcode, notify, _, _ = failing
    transcode.send("a")
    transcode.send("b")
    notify.send("c")
    assert wait_for(lambda: len(broker.dead_letters.list()) == 3)

    assert len(broker.dead_letters.list(queue="audio")) == 2
    assert [d.actor_name for d in broker.dead_letters.list(queue="mail")] == ["notify"]
    assert len(broker.dead_letters.list(actor="transcode")) == 2
    assert broker.dead_letters.list(queue="mail", actor="transcode") == []
    assert len(broker.dead_letters.list(limit=1)) == 1


def test_get_shows_payload_traceback_and_times(broker, worker, failing):
    transcode, *_ = failing
    message = transcode.send("song.mp3")
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    (listed,) = broker.dead_letters.list()

    letter = broker.dead_letters.get(listed.id)
    assert letter is not None
    assert letter.message_id == message.message_id
    assert letter.payload["args"] == ["song.mp3"]
    assert "cannot transcode song.mp3" in letter.traceback
    assert letter.deliveries == 1
    assert letter.enqueued_at <= letter.failed_at
    assert letter.to_dict()["failed_at"].endswith("+00:00")
    assert broker.dead_letters.get("999999") is None
    assert broker.dead_letters.get("not-a-number") is None


def test_replay_runs_the_message_again_and_removes_the_dead_letter(broker, worker, failing):
    transcode, _, healed, done = failing
    transcode.send("song.mp3")
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    (letter,) = broker.dead_letters.list()

    healed["yes"] = True
    broker.dead_letters.replay(letter.id)

    assert wait_for(lambda: done == [("transcode", "song.mp3")])
    assert broker.dead_letters.list() == []
    with pytest.raises(KeyError):
        broker.dead_letters.replay(letter.id)


def test_delete_and_purge(broker, worker, failing):
    transcode, notify, _, _ = failing
    for name in "abc":
        transcode.send(name)
    notify.send("d")
    notify.send("e")
    assert wait_for(lambda: len(broker.dead_letters.list()) == 5)

    # Which actor's letters come first depends on the worker threads: pick an "audio" one.
    first = next(d for d in broker.dead_letters.list() if d.queue_name == "audio")
    assert broker.dead_letters.delete(first.id) is True
    assert broker.dead_letters.delete(first.id) is False
    assert len(broker.dead_letters.list()) == 4

    assert broker.dead_letters.purge(queue="mail") == 2
    assert {d.queue_name for d in broker.dead_letters.list()} == {"audio"}
    assert broker.dead_letters.purge(actor="transcode") == 2
    assert broker.dead_letters.list() == []
    notify.send("f")
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    assert broker.dead_letters.purge() == 1


def test_dead_letters_expire_after_their_ttl(make_broker, start_worker):
    broker = make_broker(dead_letter_ttl=1.0)

    @dramatiq.actor(broker=broker, max_retries=0)
    def fails():
        raise RuntimeError("boom")

    start_worker(broker)
    fails.send()
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    assert wait_for(lambda: broker.dead_letters.list() == [], timeout=10)
