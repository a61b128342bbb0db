"""How the suite picks its servers: containers when Docker answers, the wheels' otherwise."""

from __future__ import annotations

import contextlib

import pytest

from tests.support import containers


def test_no_docker_means_the_wheels_servers(monkeypatch):
    monkeypatch.setenv("TEST_NO_DOCKER", "1")
    assert containers.docker_answers() is False
    with contextlib.ExitStack() as stack:
        assert containers.in_docker(stack, containers.postgres_container, "PostgreSQL") is None


def test_a_container_that_cannot_start_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setattr(containers, "docker_answers", lambda: True)

    @contextlib.contextmanager
    def broken():
        raise RuntimeError("pull access denied")
        yield

    with contextlib.ExitStack() as stack, pytest.warns(UserWarning, match="pull access denied"):
        assert containers.in_docker(stack, broken, "NATS") is None


def test_a_container_that_starts_is_used(monkeypatch):
    monkeypatch.setattr(containers, "docker_answers", lambda: True)
    stopped = []

    @contextlib.contextmanager
    def fake():
        yield "nats://127.0.0.1:1"
        stopped.append(True)

    with contextlib.ExitStack() as stack:
        assert containers.in_docker(stack, fake, "NATS") == "nats://127.0.0.1:1"
    assert stopped == [True]
