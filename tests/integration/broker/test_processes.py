"""Real ``dramatiq`` worker processes on a real nats-server: crashes, poison, volume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from broker import NatsBroker
from tests.support.paths import ROOT
from tests.support.waiting import wait_for

APP = "tests.integration.broker.worker_app"


class Workers:
    """Launch ``dramatiq`` CLI workers against one namespace and read what they ran."""

    def __init__(self, url: str, record_dir: Path, **env: str) -> None:
        self.record_dir = record_dir
        self.env = {
            **os.environ,
            "NATS_URL": url,
            "NATS_NAMESPACE": f"proc-{uuid.uuid4().hex[:8]}",
            "RECORD_DIR": str(record_dir),
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.procs: list[subprocess.Popen] = []
        self.broker = NatsBroker(
            url,
            namespace=self.env["NATS_NAMESPACE"],
            ack_wait=float(self.env.get("ACK_WAIT", "30")),
        )

    def start(self, processes: int = 1, threads: int = 2) -> subprocess.Popen:
        cmd = [
            sys.executable,
            "-m",
            "dramatiq",
            APP,
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ]
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.record_dir / f"stderr-{len(self.procs)}.log", "w"),  # noqa: SIM115
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def lines(self) -> list[str]:
        out: list[str] = []
        for path in self.record_dir.glob("ran-*.txt"):
            out.extend(path.read_text().splitlines())
        return out

    def pids_with(self, line: str) -> list[int]:
        return [
            int(path.stem.split("-")[1])
            for path in self.record_dir.glob("ran-*.txt")
            if line in path.read_text().splitlines()
        ]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        try:
            self.broker.delete_streams()
        finally:
            self.broker.close()


@pytest.fixture
def workers(nats_url, tmp_path):
    made: list[Workers] = []

    def make(**env: str) -> Workers:
        made.append(Workers(nats_url, tmp_path, **env))
        return made[-1]

    yield make
    for group in made:
        group.stop()


def send(group: Workers, actor: str, *args) -> None:
    import dramatiq

    group.broker.enqueue(dramatiq.Message("default", actor, args, {}, {}))


def test_a_killed_workers_message_is_finished_by_another(workers):
    group = workers(ACK_WAIT="2")
    first = group.start(processes=1, threads=1)
    send(group, "sleepy", 1, 4.0)
    assert wait_for(lambda: "start 1" in group.lines())

    (pid,) = group.pids_with("start 1")
    os.kill(pid, signal.SIGKILL)  # the worker process dies mid-task
    group.start(processes=1, threads=1)

    assert wait_for(lambda: "done 1" in group.lines(), timeout=60)
    assert group.lines().count("start 1") == 2
    assert group.lines().count("done 1") == 1
    # dramatiq's master stops its other worker processes and exits when one of them dies:
    # RET_KILLED (1) for a worker killed by a signal. A process manager starts it again.
    assert first.wait(60) == 1


def test_a_poison_message_ends_in_the_dead_letters_and_workers_go_on(workers):
    # Prefetch 1: a message merely prefetched by a dying worker counts as delivered too.
    group = workers(ACK_WAIT="1", MAX_DELIVERIES="2", dramatiq_queue_prefetch="1")
    send(group, "poison")
    send(group, "count", 7)

    # dramatiq's master process exits when a worker process dies; a process manager
    # (Heroku, systemd, Kubernetes) starts it again. Play that part, a bounded number of times.
    for _ in range(6):
        proc = group.start(processes=1, threads=1)
        wait_for(lambda p=proc: p.poll() is not None or group.broker.dead_letters.list(), 30)
        if group.broker.dead_letters.list():
            break

    assert wait_for(lambda: len(group.broker.dead_letters.list()) == 1, timeout=30)
    (letter,) = group.broker.dead_letters.list()
    assert letter.actor_name == "poison"
    assert "delivered 3 times" in letter.reason
    assert group.lines().count("poison") == 2  # bounded: it killed its worker twice
    assert wait_for(lambda: "7" in group.lines())


def test_ten_thousand_messages_through_two_worker_processes_run_exactly_once(
    workers, consumer_info
):
    group = workers()
    total = 10_000
    group.start(processes=2, threads=4)
    import dramatiq

    for n in range(total):
        group.broker.enqueue(dramatiq.Message("default", "count", (n,), {}, {}))

    assert wait_for(lambda: len(group.lines()) >= total, timeout=240)
    # Nothing is waiting or unsettled any more, so no delivery can still come, and every run
    # was recorded before its message was acknowledged; the server delivered each message
    # once: no redelivery, so no duplicate run is on its way either.
    group.broker.join("default", timeout=30_000)
    assert consumer_info(group.broker, "default").delivered.consumer_seq == total
    counts = Counter(group.lines())
    assert len(counts) == total
    assert set(counts.values()) == {1}
    assert len(list(group.record_dir.glob("ran-*.txt"))) == 2  # both processes took a share
