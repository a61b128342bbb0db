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


#: A backlog by the seconds its oldest message has waited (``None``: nothing waits), and the
#: messages waiting and unsettled; made when the test runs, not when it is collected.
Figures = tuple[float | None, int, int]


def backlog_of(figures: Figures | None) -> QueueBacklog | None:
    if figures is None:
        return None
    age, waiting, unsettled = figures
    return QueueBacklog(waiting, unsettled, None if age is None else time.time() - age)


@pytest.mark.parametrize(
    ("current", "figures", "expected"),
    [
        (2, (600, 3, 8), 3),  # stages wait 10 minutes: one more
        (5, (600, 3, 8), 5),  # ... but never past MAX_WORKERS
        (2, (30, 3, 8), 2),  # they wait, under the target: enough workers
        (3, (None, 0, 8), 2),  # nothing waits, 8 in flight fit on 2 workers
        (3, (None, 0, 9), 3),  # ... 9 do not
        (1, (None, 0, 0), 1),  # never under MIN_WORKERS
        (2, None, 2),  # NATS away: no figures, no change
    ],
)
def test_workers_follow_the_queue_time_of_the_pipeline(tmp_path, current, figures, expected):
    assert workers(tmp_path, current, backlog_of(figures)) == expected


def test_an_unreachable_metrics_port_changes_nothing(tmp_path):
    assert workers(tmp_path, 3, backlog_of((600, 3, 8)), url="http://127.0.0.1:9/metrics") == 3
