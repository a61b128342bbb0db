"""``/healthz`` (the process answers) and ``/readyz`` (PostgreSQL, the schema, NATS and
JetStream answer, each asked for real).

NATS is asked over a connection of the probe's own — connect (signing in as the broker does:
``NATS_CREDS``, ``NATS_NKEY_SEED``, ``NATS_TLS_*``), a PING/PONG round trip, then JetStream
for the work stream — each step bounded by :data:`NATS_TIMEOUT_S`, never through
the API's cached client: that one still looks open while it reconnects to a server that is
gone, and a first connect through it may take the broker's whole connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from flask import Blueprint, current_app, jsonify
from nats.aio.client import Client
from nats.errors import NoServersError
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from app.db import schema_state
from app.http.current import broker, sessions
from broker import NatsBroker
from broker.connection import NatsClient
from broker.sign_in import NatsSignIn, refusal

bp = Blueprint("health", __name__)

#: Seconds each step of the NATS check may take (connect, round trip, JetStream request).
NATS_TIMEOUT_S = 2.0
#: Seconds one answer of ``/readyz`` is reused.
READY_CACHE_S = 1.0


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """The checks, asked at most once per :data:`READY_CACHE_S` per process whoever calls:
    the route needs no token, so a client hammering it must not make the API hammer the
    database and NATS (each probe opens a NATS connection of its own)."""
    cache = current_app.extensions.setdefault("readyz", _ReadyCache())
    ready, checks = cache.answer(_check)
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return jsonify(body), 200 if ready else 503


class _ReadyCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = -READY_CACHE_S
        self.last: tuple[bool, dict[str, str]] = (False, {})

    def answer(self, check) -> tuple[bool, dict[str, str]]:
        with self.lock:  # callers arriving during a probe wait for it and share its answer
            if time.monotonic() - self.at >= READY_CACHE_S:
                self.last = check()
                self.at = time.monotonic()
            return self.last


def _check() -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        migrations = schema_state(sessions())
        checks["database"] = "ok"
        checks["migrations"] = migrations
    except Exception as exc:  # any failure means "not ready", with the reason
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks.update(nats_checks(broker()))
    return all(v == "ok" for v in checks.values()), checks


def nats_checks(broker: NatsBroker) -> dict[str, str]:
    """``{"nats": ..., "jetstream": ...}``, each ``"ok"`` or what is wrong."""
    try:
        # Run on the broker's loop; the probe bounds itself, this bound is a backstop.
        return broker.connection.run(lambda: _probe(broker), timeout=4 * NATS_TIMEOUT_S)
    except Exception as exc:
        return {"nats": f"unreachable: {_reason(exc)}", "jetstream": "not checked"}


async def _probe(broker: NatsBroker) -> dict[str, str]:
    nc = NatsClient()
    try:
        try:
            await asyncio.wait_for(
                _connect(nc, broker.connection.servers, broker.sign_in), NATS_TIMEOUT_S + 1
            )
            # nats-py annotates its timeouts in seconds as int; it takes floats.
            await nc.flush(timeout=NATS_TIMEOUT_S)  # type: ignore[arg-type]
        except Exception as exc:
            return {"nats": f"unreachable: {_reason(exc)}", "jetstream": "not checked"}
        try:
            js = nc.jetstream(timeout=NATS_TIMEOUT_S)
            try:
                await js.stream_info(broker.topology.stream)
            except NotFoundError:  # a new deployment: made now, as the first upload would
                await broker.topology.ensure_streams(js)
        except Exception as exc:
            return {"nats": "ok", "jetstream": f"unavailable: {_reason(exc)}"}
        return {"nats": "ok", "jetstream": "ok"}
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), 1)


async def _connect(nc: Client, servers: list[str], sign_in: NatsSignIn) -> None:
    async def quiet(exc: Exception) -> None:  # nats-py logs every failure as an error
        pass

    await nc.connect(
        servers=servers,
        name="phantomchain-readyz",
        # nats-py annotates these two in seconds as int; it takes floats.
        connect_timeout=NATS_TIMEOUT_S,  # type: ignore[arg-type]
        allow_reconnect=False,
        max_reconnect_attempts=1,  # each server tried twice (0 would mean: forever)
        reconnect_time_wait=0.1,  # type: ignore[arg-type]
        error_cb=quiet,
        **sign_in.connect_options(),
    )


def _reason(exc: BaseException) -> str:
    refused = refusal(exc)
    if refused is not None:  # "authorization violation", "the TLS handshake failed (…)"
        return refused.reason
    if isinstance(exc, TimeoutError):  # asyncio's, nats-py's and concurrent.futures' alike
        return f"no answer within {NATS_TIMEOUT_S:g} s"
    if isinstance(exc, NoServersError):
        return "no server answered"
    if isinstance(exc, ServiceUnavailableError):  # no responders: nobody runs JetStream
        return "JetStream is not enabled or has no leader"
    if isinstance(exc, APIError) and exc.description:
        return exc.description
    return type(exc).__name__
