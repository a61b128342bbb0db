"""The Dramatiq broker every actor is declared on: NatsBroker at ``NATS_URL``.

Imported before any actor so ``dramatiq tasks.pipeline`` and the web process agree. Building
it does no I/O (the connection opens on first use, per process).
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage, default_middleware

from app.config import nats_url_from_env
from broker import NatsBroker
from tasks.observability import Observability

broker = NatsBroker(
    nats_url_from_env(),
    namespace="phantomchain",
    middleware=[m() for m in default_middleware] + [CurrentMessage(), Observability()],
)
dramatiq.set_broker(broker)
