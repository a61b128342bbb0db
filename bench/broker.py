"""Broker benchmark: NatsBroker against dramatiq's Redis and RabbitMQ brokers, same run.

    .venv/bin/python bench/broker.py [--messages 20000] [--processes 2] [--threads 4]

Every broker gets the same no-op actor (≈300-byte messages) and the same workers
(``dramatiq bench.broker_actors --processes 2 --threads 4``). Per broker it reports:

* enqueue rate and latency p50/p99 — one thread calling ``actor.send`` in a loop;
* drain rate — everything enqueued first, then workers started; first to last run;
* end-to-end rate — workers started and idle first, then enqueue until all have run;
* exact counts — each worker process writes the ids it ran to its own file.

Raw nats-py JetStream (awaited publish, pipelined publish, fetch + ack) is the upper bound.
``nats-r3`` runs NatsBroker on a 3-node JetStream cluster started here on loopback, every stream
kept on all three (``NATS_REPLICAS=3``): beside the single node it prints
``nats R3/R1 ... ratio`` lines, the cost of replication (all three nodes share this machine's
cores, so it is an upper bound on that cost, not a deployment's figure).
Peers that do not answer on their standard ports are skipped with a message. The last line is
``nats/redis throughput ratio: X.XX`` (end-to-end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dramatiq  # noqa: E402

from app.embedded.nats_server import NatsServer, cluster_nodes  # noqa: E402
from bench.broker_peers import make_broker  # noqa: E402

PADDING = "x" * 150  # with Dramatiq's envelope a message is about 300 bytes


@dataclass
class Row:
    name: str
    enqueue_rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    drain_rate: float = 0.0
    e2e_rate: float = 0.0
    processed: str = ""
    note: str = ""


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Workers:
    def __init__(self, kind: str, url: str, queue: str, record_dir: Path, procs: int, threads: int):
        self.cmd = [
            sys.executable,
            "-m",
            "dramatiq",
            "bench.broker_actors",
            "--processes",
            str(procs),
            "--threads",
            str(threads),
        ]
        self.env = {
            **os.environ,
            "BENCH_BROKER": kind,
            "BENCH_URL": url,
            "BENCH_QUEUE": queue,
            "BENCH_RECORD_DIR": str(record_dir),
            "PYTHONPATH": str(ROOT),
        }
        self.record_dir = record_dir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def lines(self) -> list[str]:
        out: list[str] = []
        for path in self.record_dir.glob("ran-*.txt"):
            out.extend(path.read_text().splitlines())
        return out

    def reset(self) -> None:
        # Truncate, not unlink: the workers keep their files open in append mode.
        for path in self.record_dir.glob("ran-*.txt"):
            path.write_text("")

    def wait_count(self, n: int, timeout: float) -> tuple[int, float | None]:
        """Wait until ``n`` runs are recorded; returns (count, monotonic time of the first)."""
        first = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            count = len(self.lines())
            if count and first is None:
                first = time.monotonic()
            if count >= n:
                return count, first
            time.sleep(0.02)
        return len(self.lines()), first


def run_broker(name: str, kind: str, url: str, args: argparse.Namespace) -> Row:
    queue = f"bench_{uuid.uuid4().hex[:8]}"
    record_dir = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    broker = make_broker(kind, url, f"bench-{queue}")
    actor = dramatiq.actor(_noop, broker=broker, actor_name="noop", queue_name=queue)
    workers = Workers(kind, url, queue, record_dir, args.processes, args.threads)
    row = Row(name)
    if kind == "nats-lanes":  # one tenant's lane: what fair shares cost when nobody shares

        def send(i: int) -> None:
            actor.send_with_options(args=(i, PADDING), lane="tenant-1")
    else:

        def send(i: int) -> None:
            actor.send(i, PADDING)

    n = args.messages
    try:
        # 1. enqueue with no worker running, then drain.
        latencies = []
        started = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            send(i)
            latencies.append(time.perf_counter() - t0)
        row.enqueue_rate = n / (time.perf_counter() - started)
        latencies.sort()
        row.p50_ms = statistics.median(latencies) * 1000
        row.p99_ms = latencies[int(len(latencies) * 0.99)] * 1000

        workers.start()
        count, first = workers.wait_count(n, timeout=n / 50 + 60)
        done = time.monotonic()
        row.drain_rate = n / (done - first) if first and count >= n else 0.0
        drained = Counter(workers.lines())

        # 2. end to end: workers up and idle, then enqueue until all have run.
        workers.reset()
        send(-1)
        workers.wait_count(1, timeout=60)
        workers.reset()
        started = time.monotonic()
        for i in range(n):
            send(i)
        count, _ = workers.wait_count(n, timeout=n / 50 + 60)
        row.e2e_rate = n / (time.monotonic() - started) if count >= n else 0.0
        time.sleep(0.5)  # let a duplicate show itself
        e2e = Counter(workers.lines())
        row.processed = f"{sum(drained.values())}/{len(drained)} + {sum(e2e.values())}/{len(e2e)}"
        if len(drained) != n or len(e2e) != n or max([*drained.values(), *e2e.values()]) > 1:
            row.note = "NOT exactly once"
    finally:
        workers.stop()
        cleanup(kind, broker, queue)
        shutil.rmtree(record_dir, ignore_errors=True)
    return row


def _noop(n: int, padding: str) -> None:  # the sender's view of the actor
    pass


def cleanup(kind: str, broker: dramatiq.Broker, queue: str) -> None:
    try:
        if kind.startswith("nats"):
            broker.delete_streams()
        elif kind == "redis":
            broker.flush_all()
            for key in broker.client.scan_iter(f"bench-{queue}*"):
                broker.client.delete(key)
        else:
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                broker.channel.queue_delete(name)
    except Exception as exc:
        print(f"  (cleanup of {kind} failed: {exc!r})", file=sys.stderr)
    broker.close()


async def raw_jetstream(url: str, n: int) -> list[Row]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    stream = f"raw-{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=stream, subjects=[f"{stream}.>"])
    payload = os.urandom(150).hex().encode()[:300]
    rows = []
    try:
        latencies = []
        started = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            await js.publish(f"{stream}.a", payload)
            latencies.append(time.perf_counter() - t0)
        latencies.sort()
        rows.append(
            Row(
                "raw JetStream: awaited publish",
                n / (time.perf_counter() - started),
                statistics.median(latencies) * 1000,
                latencies[int(n * 0.99)] * 1000,
            )
        )

        started = time.perf_counter()
        window = []
        for _ in range(n):
            window.append(await js.publish_async(f"{stream}.b", payload))
            if len(window) >= 1000:
                await asyncio.gather(*window)
                window = []
        await asyncio.gather(*window)
        rows.append(Row("raw JetStream: pipelined publish", n / (time.perf_counter() - started)))

        sub = await js.pull_subscribe(f"{stream}.b", durable="raw", stream=stream)
        got = 0
        started = time.perf_counter()
        while got < n:
            for msg in await sub.fetch(256, timeout=5):
                await msg.ack()
                got += 1
        await nc.flush()
        rows.append(
            Row("raw JetStream: fetch + ack", drain_rate=n / (time.perf_counter() - started))
        )
    finally:
        await js.delete_stream(stream)
        await nc.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--only",
        help="comma-separated subset: "
        "nats,nats-lanes,nats-r3,nats-metrics,nats-system,redis,rabbitmq,rabbitmq-confirm,raw",
    )
    parser.add_argument(
        "--metrics-rounds",
        type=int,
        default=1,
        help="how many times NatsBroker runs without and then with the metrics middleware",
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    want = lambda name: only is None or name in only  # noqa: E731

    rows: list[Row] = []
    store = Path(tempfile.mkdtemp(prefix="bench-nats-"))
    server = NatsServer(store_dir=store).start()
    try:
        if want("nats"):
            rows.append(run_broker("NatsBroker (nats-server 2.15, file)", "nats", server.url, args))
        if want("nats-lanes"):
            rows.append(
                run_broker(
                    "NatsBroker, one lane (nats-server 2.15)", "nats-lanes", server.url, args
                )
            )
        if want("nats-r3"):
            rows.append(run_cluster(args))
        if want("nats-metrics"):
            metrics_rows = run_metrics_rounds(server.url, args)
            rows.extend(metrics_rows)
        if want("nats-system"):
            if answers("127.0.0.1", 4222):
                rows.append(
                    run_broker(
                        "NatsBroker (system nats-server 2.9)", "nats", "nats://127.0.0.1:4222", args
                    )
                )
            else:
                print("skipped: no system NATS on 127.0.0.1:4222")
        if want("redis"):
            if answers("127.0.0.1", 6379):
                rows.append(run_broker("RedisBroker", "redis", "redis://127.0.0.1:6379/0", args))
            else:
                print("skipped: no Redis on 127.0.0.1:6379")
        for kind, label in (
            ("rabbitmq", "RabbitmqBroker (no confirms)"),
            ("rabbitmq-confirm", "RabbitmqBroker (confirm_delivery)"),
        ):
            if not want(kind):
                continue
            if answers("127.0.0.1", 5672):
                rows.append(run_broker(label, kind, "amqp://guest:guest@127.0.0.1:5672/%2F", args))
            else:
                print(f"skipped: no RabbitMQ on 127.0.0.1:5672 ({label})")
        if want("raw"):
            rows.extend(asyncio.run(raw_jetstream(server.url, args.messages)))
    finally:
        server.stop()
        shutil.rmtree(store, ignore_errors=True)

    print_table(rows, args)
    by_name = {
        r.name.split(" (")[0] + (" confirms" if "confirm_delivery" in r.name else ""): r
        for r in rows
    }
    nats_row = next((r for r in rows if r.name.startswith("NatsBroker (nats-server")), None)
    for label, key in (
        ("nats/rabbitmq (no confirms)", "RabbitmqBroker"),
        ("nats/rabbitmq (confirms)", "RabbitmqBroker confirms"),
    ):
        if nats_row and key in by_name and by_name[key].e2e_rate:
            print(f"{label} throughput ratio: {nats_row.e2e_rate / by_name[key].e2e_rate:.2f}")
    plain = [r for r in rows if r.name.startswith("NatsBroker, metrics off")]
    measured = [r for r in rows if r.name.startswith("NatsBroker, metrics on")]
    if plain and measured:
        # Drain is the consume side alone, where the metrics are counted: the stricter figure.
        for phase in ("drain_rate", "e2e_rate"):
            on = statistics.median(getattr(r, phase) for r in measured)
            off = statistics.median(getattr(r, phase) for r in plain)
            ratio = on / off
            label = phase.removesuffix("_rate")
            print(f"metrics on/off {label} ratio: {ratio:.3f} (cost {100 * (1 - ratio):.1f}%)")
    lanes_row = next((r for r in rows if r.name.startswith("NatsBroker, one lane")), None)
    if nats_row and lanes_row:
        for label, phase in (
            ("enqueue", "enqueue_rate"),
            ("drain", "drain_rate"),
            ("e2e", "e2e_rate"),
        ):
            plain_rate, laned = getattr(nats_row, phase), getattr(lanes_row, phase)
            if plain_rate and laned:
                print(f"nats lane/plain {label} throughput ratio: {laned / plain_rate:.2f}")
    r3_row = next((r for r in rows if r.name.startswith("NatsBroker (3-node")), None)
    if nats_row and r3_row:
        for label, phase in (
            ("enqueue", "enqueue_rate"),
            ("drain", "drain_rate"),
            ("e2e", "e2e_rate"),
        ):
            r1, r3 = getattr(nats_row, phase), getattr(r3_row, phase)
            if r1 and r3:
                print(f"nats R3/R1 {label} throughput ratio: {r3 / r1:.2f}")
        print(f"nats R3/R1 enqueue p50: {nats_row.p50_ms:.2f} -> {r3_row.p50_ms:.2f} ms")
    redis = by_name.get("RedisBroker")
    if nats_row and redis and redis.e2e_rate:
        print(f"nats/redis throughput ratio: {nats_row.e2e_rate / redis.e2e_rate:.2f}")
    else:
        print("nats/redis throughput ratio: n/a (Redis or NATS row missing)")


def run_cluster(args: argparse.Namespace) -> Row:
    """NatsBroker with ``replicas=3`` on three nats-servers routed to each other on loopback."""
    store = Path(tempfile.mkdtemp(prefix="bench-nats-r3-"))
    nodes = cluster_nodes(store, name="bench")
    try:
        urls = [node.start().url for node in nodes]
        asyncio.run(wait_for_replicated_streams(urls))
        return run_broker("NatsBroker (3-node cluster, R3, file)", "nats-r3", ",".join(urls), args)
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(store, ignore_errors=True)


async def wait_for_replicated_streams(urls: list[str], timeout: float = 60.0) -> None:
    """Until the cluster has elected its JetStream leader: an R3 stream can be made."""
    import nats

    nc = await nats.connect(servers=urls)
    js = nc.jetstream(timeout=2.0)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                await js.add_stream(name="ready", subjects=["ready.>"], num_replicas=3)
                await js.delete_stream("ready")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await nc.close()


def run_metrics_rounds(url: str, args: argparse.Namespace) -> list[Row]:
    """NatsBroker without and with the service's Observability middleware, alternately, so
    that the machine's drift hits both alike."""
    rows = []
    metrics_dir = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    os.environ.update(METRICS_DIR=str(metrics_dir), WORKER_METRICS_PORT="0")
    try:
        for round_no in range(1, args.metrics_rounds + 1):
            for kind, label in (("nats", "off"), ("nats-metrics", "on")):
                name = f"NatsBroker, metrics {label} (round {round_no})"
                rows.append(run_broker(name, kind, url, args))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return rows


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print()
    print(
        f"{args.messages} messages, workers: dramatiq --processes {args.processes} "
        f"--threads {args.threads}, {os.cpu_count()} cores"
    )
    header = (
        "broker",
        "enqueue msg/s",
        "p50 ms",
        "p99 ms",
        "drain msg/s",
        "e2e msg/s",
        "processed (total/unique)",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = [
            r.name,
            f"{r.enqueue_rate:,.0f}" if r.enqueue_rate else "",
            f"{r.p50_ms:.2f}" if r.p50_ms else "",
            f"{r.p99_ms:.2f}" if r.p99_ms else "",
            f"{r.drain_rate:,.0f}" if r.drain_rate else "",
            f"{r.e2e_rate:,.0f}" if r.e2e_rate else "",
            (r.processed + (f" {r.note}" if r.note else "")),
        ]
        print("| " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    main()
