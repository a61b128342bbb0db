"""``deploy/keda/worker-scaledobject.yaml`` scales on the queue the workers really consume.

KEDA's nats-jetstream scaler reads ``/jsz?acc=<account>&consumers=true&config=true`` from a
NATS server's monitoring port and scales on ``num_pending + num_ack_pending`` of the named
consumer of the named stream; a name it does not find is no error to it (it falls back to the
stream's last sequence), so the names are checked here against what the broker creates, on a
nats-server of this test's own (with its monitoring port; the deployment's default namespace
is safe to use on it: nothing else is there).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import dramatiq
import pytest
import yaml

from app.config import Config
from app.embedded.nats_server import NatsServer, free_port, port_answers
from app.queue import PIPELINE_ACTOR, PIPELINE_QUEUE, make_broker, start_job
from tests.support.paths import ROOT
from tests.support.waiting import wait_for

MANIFEST = ROOT / "deploy" / "keda" / "worker-scaledobject.yaml"


@pytest.fixture
def monitored_nats(tmp_path) -> Iterator[tuple[str, int]]:
    """A nats-server with JetStream and its HTTP monitoring port: (client URL, monitoring port)."""
    monitoring = free_port()
    server = NatsServer(store_dir=tmp_path / "nats", extra_args=("-m", str(monitoring)))
    server.start()
    try:
        assert wait_for(lambda: port_answers("127.0.0.1", monitoring))
        yield server.url, monitoring
    finally:
        server.stop()


def keda_lag(monitoring_port: int, account: str, stream: str, consumer: str) -> int:
    """What KEDA's scaler computes, from the same endpoint; fails where KEDA would silently
    fall back to another figure."""
    url = f"http://127.0.0.1:{monitoring_port}/jsz?acc={account}&consumers=true&config=true"
    with urllib.request.urlopen(url, timeout=10) as response:
        found = json.load(response)
    accounts = {a["name"]: a for a in found.get("account_details") or []}
    assert account in accounts, f"no account {account!r} in {sorted(accounts)}"
    streams = {s["name"]: s for s in accounts[account].get("stream_detail") or []}
    assert stream in streams, f"no stream {stream!r} in {sorted(streams)}"
    consumers = {c["name"]: c for c in streams[stream].get("consumer_detail") or []}
    assert consumer in consumers, f"no consumer {consumer!r} in {sorted(consumers)}"
    return int(consumers[consumer]["num_pending"]) + int(consumers[consumer]["num_ack_pending"])


def test_the_scaled_object_reads_the_lag_of_the_pipeline_consumer(monitored_nats):
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["kind"] == "ScaledObject"
    assert manifest["spec"]["scaleTargetRef"] == {
        "kind": "Deployment",
        "name": "phantomchain-worker",
    }
    (trigger,) = manifest["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    meta = trigger["metadata"]
    # Kubernetes takes trigger metadata as strings only; KEDA parses the thresholds as integers.
    assert all(isinstance(value, str) for value in meta.values()), meta
    assert int(meta["lagThreshold"]) > 0 and int(meta["activationLagThreshold"]) >= 0

    url, monitoring = monitored_nats
    broker = make_broker(url, Config.nats_namespace)  # the deployment's default namespace
    try:
        assert (meta["stream"], meta["consumer"]) == (
            broker.topology.stream,
            broker.topology.durable(PIPELINE_QUEUE),
        )
        for n in range(3):
            start_job(broker, f"job-{n}", tenant=f"tenant-{n % 2}", priority="normal")
        # A worker holds one (delivered, not acknowledged): it still counts, as it should.
        dramatiq.actor(
            lambda job_id, stage: None,
            broker=broker,
            actor_name=PIPELINE_ACTOR,
            queue_name=PIPELINE_QUEUE,
        )
        consumer = broker.consume(PIPELINE_QUEUE, prefetch=1, timeout=2000)
        try:
            held = next(message for message in consumer if message is not None)
            assert broker.queue_stats()[PIPELINE_QUEUE] == (2, 1)
            lag = keda_lag(monitoring, meta["account"], meta["stream"], meta["consumer"])
            assert lag == 3
            consumer.ack(held)
        finally:
            consumer.close()
        # An acknowledgement is published, not answered: the server counts it when it arrives.
        assert wait_for(
            lambda: keda_lag(monitoring, meta["account"], meta["stream"], meta["consumer"]) == 2
        ), keda_lag(monitoring, meta["account"], meta["stream"], meta["consumer"])
    finally:
        broker.delete_streams()
        broker.close()
