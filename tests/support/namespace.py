"""The service's NATS namespace of this test session (one per xdist worker: each is a process
of its own), and the settings of an API or worker under test."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from app.queue import make_broker
from broker import NatsBroker

#: The namespace of every service stream this test session makes — never ``phantomchain``: a
#: ``TEST_NATS_URL`` may name a server where a real deployment keeps its queues.
SERVICE_NAMESPACE = f"test-{uuid.uuid4().hex[:10]}"
_service_brokers: dict[str, NatsBroker] = {}


def service_broker(nats_url: str) -> NatsBroker:
    """The service's broker on the session's namespace at ``nats_url``, one per URL."""
    if nats_url not in _service_brokers:
        _service_brokers[nats_url] = make_broker(nats_url, SERVICE_NAMESPACE)
    return _service_brokers[nats_url]


def service_settings(database_url: str, nats_url: str, folder: Path, **env: str) -> dict:
    """The settings of an API or worker under test: its database, the session's namespace on
    ``nats_url``, files under ``folder/store``; then ``env``."""
    return {
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": SERVICE_NAMESPACE,
        "STORAGE_URL": f"file://{folder}/store",
        **env,
    }


def remove_service_streams() -> None:
    """Delete the session's service streams from every server the session used."""
    for broker in _service_brokers.values():
        with contextlib.suppress(Exception):  # a server the suite already stopped
            broker.delete_streams()
        broker.close()
    _service_brokers.clear()
