"""NATS_REPLICAS: every process keeps its streams and its bucket on that many servers, and a
3-node cluster loses neither a stored job nor the work when the pipeline stream's leader dies."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import dramatiq
import pytest
from dramatiq.errors import BrokerConnectionError

from app.config import Config
from app.queue import PIPELINE_QUEUE, make_broker
from app.storage import StorageError, open_storage
from tests.support.paths import ROOT
from tests.support.servers import stream_info
from tests.support.waiting import wait_for


def settings(nats_url: str, storage_url: str, **env: str) -> dict[str, str]:
    return {
        "DATABASE_URL": "postgresql://unused/db",  # nothing here reaches the database
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": f"r3-{uuid.uuid4().hex[:8]}",
        "NATS_REPLICAS": "3",
        "STORAGE_URL": storage_url,
        **env,
    }


def test_the_api_the_cli_and_the_worker_take_nats_replicas(tmp_path):
    """No server: what each process builds from its settings (the cluster test below shows
    what the streams then are)."""
    from app.cli.common import make_broker as cli_broker
    from app.http import create_app

    env = settings("nats://127.0.0.1:9", "nats://127.0.0.1:9/audio")
    config = Config.from_env(env)
    api = create_app(config)
    assert api.extensions["broker"].topology.replicas == 3
    assert api.extensions["storage"].replicas == 3
    assert cli_broker(config).topology.replicas == 3
    # The worker reads its settings when `dramatiq tasks.pipeline` imports it: a process of its
    # own, as in production.
    worker = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tasks.pipeline as p, tasks.context as c; "
            "print(p.broker.topology.replicas, c.get_context().storage.replicas)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env, "METRICS_DIR": str(tmp_path), "WORKER_METRICS_PORT": "0"},
    )
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.split() == ["3", "3"]


def led_stream_info(servers: list[str], name: str, but_not: str | None = None):
    """Stream ``name``'s info once it has a leader (other than ``but_not``): bounded wait."""
    found = []

    def led() -> bool:
        info = stream_info(servers, name)
        if info is None or info.cluster is None or info.cluster.leader in (None, but_not):
            return False
        found.append(info)
        return True

    assert wait_for(led, timeout=60), f"{name} has no leader"
    return found[-1]


def saves(storage, key: str, data: bytes) -> bool:
    """Whether the object was stored; False on trouble while the cluster settles."""
    try:
        storage.save(key, [data])
        return True
    except Exception:
        return False


def sends(actor, *args) -> bool:
    try:
        actor.send(*args)
        return True
    except BrokerConnectionError:
        return False


@pytest.mark.slow
@pytest.mark.faults
def test_r3_streams_and_bucket_outlive_the_pipeline_stream_leader(nats_cluster):
    urls = [node.url for node in nats_cluster]
    bucket = f"r3-{uuid.uuid4().hex[:8]}"
    config = Config.from_env(settings(",".join(urls), f"{urls[1]}/{bucket}"))
    broker = make_broker(config.nats_url, config.nats_namespace, replicas=config.nats_replicas)
    storage = open_storage(config.storage_url, config.nats_replicas)
    ran: set[str] = set()

    @dramatiq.actor(broker=broker, queue_name=PIPELINE_QUEUE, max_retries=0)
    def record(name):
        ran.add(name)

    worker = None
    try:
        # The cluster elects its JetStream leader a few seconds after starting.
        assert wait_for(lambda: sends(record, "stored before"), timeout=60)
        topology = broker.topology
        for name in (topology.stream, topology.dead_letter_stream):
            assert led_stream_info(urls, name).config.num_replicas == 3, name
        assert wait_for(lambda: saves(storage, "takes/one.bin", b"audio" * 1000), timeout=60)
        assert led_stream_info(urls, f"OBJ_{bucket}").config.num_replicas == 3

        # SIGKILL the node leading the pipeline stream, with a message stored and not consumed.
        leader = led_stream_info(urls, topology.stream).cluster.leader
        dead = next(node for node in nats_cluster if node.extra_args[1] == leader)
        dead.kill()
        alive = [node.url for node in nats_cluster if node is not dead]

        led_stream_info(alive, topology.stream, but_not=leader)  # a new leader, elected
        assert wait_for(lambda: sends(record, "stored after"), timeout=60)
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        assert wait_for(lambda: ran == {"stored before", "stored after"}, timeout=60), ran

        # The bucket, whose leader may have died too, still has the object. A read during
        # the bucket's own election can time out (a stage would be retried): read until one
        # answers.
        survivor = open_storage(f"{alive[0]}/{bucket}")
        read: list[bytes] = []

        def reads() -> bool:
            try:
                with survivor.local_path("takes/one.bin") as path:
                    read.append(path.read_bytes())
                    return True
            except StorageError:  # no such object: lost, no point asking again
                raise
            except Exception:
                return False

        try:
            assert wait_for(reads, timeout=60)
            assert read[-1] == b"audio" * 1000
        finally:
            survivor.close()
    finally:
        if worker is not None:
            worker.stop()
        broker.close()
        storage.close()


@pytest.mark.slow
def test_raising_nats_replicas_scales_the_existing_streams(nats_cluster):
    """A deployment that starts on R1 and sets ``NATS_REPLICAS=3`` later gets R3 streams the
    next time a process starts, with the messages they hold."""
    urls = [node.url for node in nats_cluster]
    namespace = f"scale-{uuid.uuid4().hex[:8]}"
    first = make_broker(",".join(urls), namespace, replicas=1)
    first.declare_actor(
        dramatiq.actor(lambda: None, broker=first, actor_name="noop", queue_name=PIPELINE_QUEUE)
    )
    message = dramatiq.Message(PIPELINE_QUEUE, "noop", (), {}, {})
    assert wait_for(lambda: sends_message(first, message), timeout=60)
    assert led_stream_info(urls, first.topology.stream).config.num_replicas == 1
    first.close()

    later = make_broker(",".join(urls), namespace, replicas=3)
    later.queue_stats()  # any use makes sure of the streams
    for name in (later.topology.stream, later.topology.dead_letter_stream):
        info = led_stream_info(urls, name)
        assert info.config.num_replicas == 3, name
    assert later.queue_stats()[PIPELINE_QUEUE] == (1, 0)
    later.delete_streams()
    later.close()


def sends_message(broker, message) -> bool:
    try:
        broker.enqueue(message)
        return True
    except BrokerConnectionError:
        return False
