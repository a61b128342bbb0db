"""What the API tests share: an API (Flask's test client) with real workers, Postgres, NATS
and storage; a song; the upload and wait calls."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.api import create_app
from app.config import Config
from tests.support.namespace import service_broker, service_settings
from tests.support.paths import ROOT
from tests.support.songs import song_flac
from tests.support.waiting import stop_all


@pytest.fixture
def make_client(migrated_database_url, service_nats_url, tmp_path):
    """A test client on the API, with two worker processes started by the ``dramatiq`` CLI
    (as the Procfile's worker line starts them) and a webhooks worker (its ``webhooks`` line),
    on the same database, NATS and storage."""
    broker = service_broker(service_nats_url)

    workers: list[subprocess.Popen] = []
    apps = []

    def make(**env):
        settings = service_settings(migrated_database_url, service_nats_url, tmp_path, **env)
        broker.flush_all()
        broker.dead_letters.purge()  # the namespace is shared by the session's tests
        for module, processes, threads in (("tasks.pipeline", 2, 1), ("tasks.webhooks", 1, 4)):
            with (tmp_path / f"{module}-{len(workers)}.log").open("wb") as log:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "dramatiq", module,
                         "--processes", str(processes), "--threads", str(threads)],
                        env={**os.environ, **settings, "PYTHONPATH": str(ROOT)},
                        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                    )
                )  # fmt: skip
        apps.append(create_app(Config.from_env(settings)))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["broker"].close()
    stop_all(workers)
    broker.flush_all()
    broker.dead_letters.purge()  # the namespace is shared by the session's tests


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("api")
    return song_flac(folder, 132.0, "F", "minor", seconds=10, rate=44100, seed=12)
