"""``deploy/autoscale-workers.sh``: the Procfile hosts' autoscaler, fed the exposition text the
web process really renders (``app.metrics``), read over ``file://`` by the script's own curl."""

from __future__ import annotations

import subprocess
import time

import pytest

from app.metrics import QueueCollector, render
from broker import QueueBacklog
from tests.support.paths import ROOT

SCRIPT = ROOT / "deploy" / "autoscale-workers.sh"
LIMITS = {"TARGET_WAIT_S": "60", "MIN_WORKERS": "1", "MAX_WORKERS": "5", "SLOTS_PER_WORKER": "4"}


class FakeBroker:
    """What :class:`QueueCollector` asks of a broker, with figures of the test's choosing."""

    def __init__(self, backlog: QueueBacklog | None) -> None:
        self.backlog = backlog
        self.dead_letters = self

    def queue_backlog(self) -> dict[str, QueueBacklog]:
        if self.backlog is None:
            raise ConnectionError("NATS away")
        return {"pipeline": self.backlog, "webhooks": QueueBacklog(9, 0, time.time() - 3600)}

    def count(self) -> dict[str, int]:
        return {}


def workers(tmp_path, current: int, backlog: QueueBacklog | None, url: str = "") -> int:
    metrics = tmp_path / "metrics.txt"
    metrics.write_bytes(render((QueueCollector(FakeBroker(backlog)),))[0])
    done = subprocess.run(
        ["sh", str(SCRIPT), str(current)],
        env={"PATH": "/usr/bin:/bin", "METRICS_URL": url or metrics.as_uri(), **LIMITS},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(done.stdout)


def waited(seconds: float, waiting: int = 3, unsettled: int = 8) -> QueueBacklog:
    return QueueBacklog(waiting, unsettled, time.time() - seconds)


@pytest.mark.parametrize(
    ("current", "backlog", "expected"),
    [
        (2, waited(600), 3),  # stages wait 10 minutes: one more
        (5, waited(600), 5),  # ... but never past MAX_WORKERS
        (2, waited(30), 2),  # they wait, under the target: enough workers
        (3, QueueBacklog(0, 8, None), 2),  # nothing waits, 8 in flight fit on 2 workers
        (3, QueueBacklog(0, 9, None), 3),  # ... 9 do not
        (1, QueueBacklog(0, 0, None), 1),  # never under MIN_WORKERS
        (2, None, 2),  # NATS away: no figures, no change
    ],
)
def test_workers_follow_the_queue_time_of_the_pipeline(tmp_path, current, backlog, expected):
    assert workers(tmp_path, current, backlog) == expected


def test_an_unreachable_metrics_port_changes_nothing(tmp_path):
    assert workers(tmp_path, 3, waited(600), url="http://127.0.0.1:9/metrics") == 3
