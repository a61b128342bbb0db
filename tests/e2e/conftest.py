"""Fixtures of the end-to-end tests: the Procfile's processes on a real Postgres and NATS."""

from __future__ import annotations

import pytest

from tests.support.deployment import Deployment, SharedDeployment, deployed_in_namespace
from tests.support.servers import new_database
from tests.support.songs import song_flac


@pytest.fixture
def deployment(database_url, service_nats_url, tmp_path):
    """An empty database, migrated by the release line, and the Procfile's processes on it."""
    with deployed_in_namespace(Deployment(tmp_path, database_url, service_nats_url)) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def module_deployment(postgres_admin_url, service_nats_url, tmp_path_factory):
    """As ``deployment``, but one for every test of a module that asks for it: a database of
    its own, migrated by the release line; tests add the processes they need."""
    tmp = tmp_path_factory.mktemp("deployment")
    deployment = SharedDeployment(tmp, new_database(postgres_admin_url), service_nats_url)
    with deployed_in_namespace(deployment) as deployed:
        yield deployed


@pytest.fixture(scope="session")
def song(tmp_path_factory) -> bytes:
    """Four seconds of a song of known tempo and key (120 BPM, A minor) at 22.05 kHz, as FLAC:
    quick through every stage. A module that needs another length has its own, saying why."""
    return song_flac(
        tmp_path_factory.mktemp("song"), 120.0, "A", "minor", seconds=4, rate=22050, seed=3
    )
