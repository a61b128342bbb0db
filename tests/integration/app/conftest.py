"""What the API tests share: an API (Flask's test client) with real workers, Postgres, NATS
and storage; a song; the upload and wait calls."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import Config
from app.http import create_app
from tests.support.namespace import service_broker, service_settings
from tests.support.paths import ROOT
from tests.support.songs import song_flac
from tests.support.stack import Stack
from tests.support.waiting import kill_groups


@pytest.fixture
def make_client(migrated_database_url, service_nats_url, tmp_path):
    """``make_client(workers=True, **env)``: a test client on the API with ``env`` over the
    settings of a fresh database, the session's namespace and storage under ``tmp_path``.

    With ``workers`` (the default), a pipeline worker started by the ``dramatiq`` CLI as the
    Procfile's worker line starts it (one process, two threads), and, when ``env`` has a
    ``WEBHOOK_SECRET``, the webhooks worker as the ``webhooks`` line starts it. A test that only
    asks the API things passes ``workers=False``: nothing to start. Workers are killed at the
    end (their graceful stop is the Procfile tests' subject, not these)."""
    broker = service_broker(service_nats_url)

    workers: list[subprocess.Popen] = []
    apps = []

    def start(module: str, threads: int, settings: dict) -> None:
        with (tmp_path / f"{module}-{len(workers)}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dramatiq",
                        module,
                        "--processes",
                        "1",
                        "--threads",
                        str(threads),
                    ],
                    env={
                        **os.environ,
                        **settings,
                        "WORKER_THREADS": str(threads),  # as the Procfile's line passes it
                        "PYTHONPATH": str(ROOT),
                    },
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    start_new_session=True,
                )
            )

    def make(workers: bool = True, **env):
        settings = service_settings(migrated_database_url, service_nats_url, tmp_path, **env)
        broker.flush_all()
        broker.dead_letters.purge()  # the namespace is shared by this process's tests
        if workers:
            start("tasks.pipeline", 2, settings)
            if "WEBHOOK_SECRET" in env:
                start("tasks.webhooks", 4, settings)
        apps.append(create_app(Config.from_env(settings)))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["broker"].close()
    kill_groups(workers)
    broker.flush_all()
    broker.dead_letters.purge()  # the namespace is shared by this process's tests


@pytest.fixture
def client(make_client):
    """A client on the API with workers."""
    return make_client()


@pytest.fixture
def api_only(make_client):
    """A client on the API without workers: for what the API answers by itself."""
    return make_client(workers=False)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("api")
    return song_flac(folder, 132.0, "F", "minor", seconds=10, rate=44100, seed=12)


@pytest.fixture
def make_stack(migrated_database_url, service_nats_url, tmp_path):
    """``make_stack(**env)``: a :class:`~tests.support.stack.Stack` on a fresh database, the
    session's namespace (emptied) and storage under ``tmp_path``; workers start when the test
    asks, and are killed at the end."""
    broker = service_broker(service_nats_url)

    stacks: list[Stack] = []

    def make(**env: str) -> Stack:
        settings = service_settings(migrated_database_url, service_nats_url, tmp_path, **env)
        broker.flush_all()
        broker.dead_letters.purge()
        client = create_app(Config.from_env(settings)).test_client()
        stacks.append(Stack(settings, client, tmp_path / "store", tmp_path))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.client.application.extensions["broker"].close()
    kill_groups([w for stack in stacks for w in stack.workers])
    broker.flush_all()
    broker.dead_letters.purge()


@pytest.fixture(scope="module")
def short_song(tmp_path_factory) -> bytes:
    """Four seconds at 22.05 kHz: quick to run through every stage."""
    folder = tmp_path_factory.mktemp("short")
    return song_flac(folder, 120.0, "A", "minor", seconds=4, rate=22050, seed=3)
