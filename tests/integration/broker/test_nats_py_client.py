"""The broker with ``wire=False``: nats-py publishes, pulls and acks (servers with TLS or nkeys).

The wire client (:mod:`broker.wire`) is the default; these re-run the consumer behaviours that
depend on the transport against the asyncio client, so both stay correct.
"""

from __future__ import annotations

import pytest

from broker.pull import AsyncPull
from tests.integration.broker.test_consumer import (  # noqa: F401  (collected here again)
    test_a_consumer_never_holds_more_than_prefetch,
    test_a_long_task_is_not_redelivered_while_its_worker_lives,
    test_delayed_messages_run_at_their_own_times,
    test_exhausted_retries_end_in_the_dead_letters_with_the_traceback,
    test_failing_actor_is_retried_with_backoff_until_it_succeeds,
    test_requeue_hands_unstarted_messages_back_at_once,
)


@pytest.fixture
def make_broker(make_broker, nats_url):  # nats_url named: pytest 8 parametrizes it only so
    def make(**options):
        options.setdefault("wire", False)
        return make_broker(**options)

    return make


def test_the_asyncio_client_is_the_one_pulling(make_broker):
    import dramatiq

    broker = make_broker()

    @dramatiq.actor(broker=broker)
    def noop():
        pass

    noop.send()
    consumer = broker.consume("default", prefetch=1, timeout=2000)
    message = next(consumer)
    assert message is not None
    assert isinstance(consumer._transport, AsyncPull)
    consumer.ack(message)
    consumer.close()
