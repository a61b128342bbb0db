"""``/healthz`` (the process answers) and ``/readyz`` (Postgres, NATS and the schema are there)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from app.web import sessions

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz():
    checks: dict[str, str] = {}
    try:
        with sessions()() as session:
            version = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        checks["database"] = "ok"
        checks["migrations"] = _migrations_state(version)
    except Exception as exc:  # any failure means "not ready", with the reason
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        from tasks.broker import broker

        broker.connection.run(lambda: broker.connection.client(), timeout=3)
        checks["nats"] = "ok"
    except Exception as exc:
        checks["nats"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), (
        200 if ready else 503
    )


def _migrations_state(version: str | None) -> str:
    import pathlib

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.config import normalise_database_url  # noqa: F401  (same package as env.py)

    root = pathlib.Path(__file__).resolve().parents[1]
    script = ScriptDirectory.from_config(Config(str(root / "alembic.ini")))
    head = script.get_current_head()
    return "ok" if version == head else f"at {version}, head is {head}: run alembic upgrade head"
