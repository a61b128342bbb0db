"""The Dramatiq broker every actor is declared on: NatsBroker at ``NATS_URL``.

Imported before any actor so ``dramatiq tasks.pipeline`` and the web process agree. Building
it does no I/O (the connection opens on first use, per process).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.middleware import CurrentMessage, default_middleware

from broker import NatsBroker

broker = NatsBroker(
    os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
    namespace="phantomchain",
    middleware=[m() for m in default_middleware] + [CurrentMessage()],
)
dramatiq.set_broker(broker)
