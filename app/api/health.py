"""``/healthz`` (the process answers) and ``/readyz`` (Postgres, NATS and the schema are there)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from app.api.current import broker, sessions
from app.db import schema_state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    checks: dict[str, str] = {}
    try:
        migrations = schema_state(sessions())
        checks["database"] = "ok"
        checks["migrations"] = migrations
    except Exception as exc:  # any failure means "not ready", with the reason
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        nats = broker().connection
        nats.run(lambda: nats.client(), timeout=3)
        checks["nats"] = "ok"
    except Exception as exc:
        checks["nats"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), (
        200 if ready else 503
    )
