"""Dramatiq's broker-agnostic behaviours, run on NatsBroker (after dramatiq's own test-suite)."""

from __future__ import annotations

import time

import dramatiq
import pytest
from dramatiq import group, pipeline
from dramatiq.middleware import TimeLimitExceeded

from tests.support.waiting import wait_for


def test_pipelines_pass_results_along(broker, worker):
    results = []

    @dramatiq.actor(broker=broker)
    def add(x, y):
        return x + y

    @dramatiq.actor(broker=broker)
    def keep(x):
        results.append(x)

    pipeline([add.message(1, 2), add.message(3), keep.message()], broker=broker).run()
    assert wait_for(lambda: results == [6])


def test_groups_run_every_member(broker, worker):
    ran = []

    @dramatiq.actor(broker=broker)
    def mark(n):
        ran.append(n)

    group([mark.message(n) for n in range(5)], broker=broker).run()
    assert wait_for(lambda: sorted(ran) == [0, 1, 2, 3, 4])


def test_success_and_failure_callbacks(broker, worker):
    outcomes = []

    @dramatiq.actor(broker=broker, max_retries=0)
    def divide(x, y):
        return x / y

    @dramatiq.actor(broker=broker)
    def on_ok(message, result):
        outcomes.append(("ok", result))

    @dramatiq.actor(broker=broker)
    def on_error(message, error):
        outcomes.append(("error", error["type"]))

    divide.send_with_options(args=(6, 3), on_success=on_ok, on_failure=on_error)
    divide.send_with_options(args=(1, 0), on_success=on_ok, on_failure=on_error)
    assert wait_for(lambda: len(outcomes) == 2)
    assert sorted(outcomes) == [("error", "ZeroDivisionError"), ("ok", 2.0)]


def test_time_limits_abort_long_actors(broker, worker):
    outcome = []

    @dramatiq.actor(broker=broker, time_limit=500, max_retries=0)
    def too_slow():
        try:
            for _ in range(100):
                time.sleep(0.05)
            outcome.append("finished")
        except TimeLimitExceeded:
            outcome.append("aborted")
            raise

    broker.emit_after("process_boot")  # starts TimeLimit's watchdog, as the dramatiq CLI does
    too_slow.send()
    assert wait_for(lambda: outcome == ["aborted"])
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    assert "TimeLimitExceeded" in broker.dead_letters.list()[0].reason


def test_throws_are_not_retried(broker, worker):
    attempts = []

    class Permanent(Exception):
        pass

    @dramatiq.actor(broker=broker, max_retries=5, min_backoff=10, throws=(Permanent,))
    def refuse():
        attempts.append(1)
        raise Permanent("never works")

    refuse.send()
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    assert attempts == [1]


def test_retry_limit_is_respected(broker, worker):
    attempts = []

    @dramatiq.actor(broker=broker, max_retries=2, min_backoff=10, max_backoff=50)
    def always_fails():
        attempts.append(1)
        raise RuntimeError("no")

    always_fails.send()
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    assert len(attempts) == 3


@pytest.mark.parametrize("priority", [0, 10])
def test_actor_priority_is_accepted(broker, worker, priority):
    ran = []

    @dramatiq.actor(broker=broker, priority=priority)
    def prioritized():
        ran.append(1)

    prioritized.send()
    assert wait_for(lambda: ran == [1])


def test_messages_on_several_queues_are_all_consumed(broker, worker):
    ran = []

    @dramatiq.actor(broker=broker, queue_name="audio")
    def on_audio():
        ran.append("audio")

    @dramatiq.actor(broker=broker, queue_name="mail")
    def on_mail():
        ran.append("mail")

    on_audio.send()
    on_mail.send()
    assert wait_for(lambda: sorted(ran) == ["audio", "mail"])
