"""Engines and sessions, for web requests, workers and the CLI alike; the schema's state.

Every process makes one session factory at start (``create_app``, the worker context, a CLI
command) and opens one short transaction per step with ``sessions.begin()``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

#: The migrations' settings (the project's root ``alembic.ini``, which names ``migrations/``).
ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


#: Seconds to wait for a new connection: a server that accepts and never answers (a network
#: black hole, a frozen host) is an error after this, not a request stuck for good.
CONNECT_TIMEOUT_S = 5


def make_engine(database_url: str) -> Engine:
    """An engine with a small pool that notices connections the server dropped."""
    return create_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_sessions(database_url: str) -> sessionmaker[Session]:
    """A session factory on its own engine (one per process)."""
    return make_session_factory(make_engine(database_url))


def schema_state(sessions: sessionmaker[Session]) -> str:
    """``"ok"`` when the database's schema is at the migrations' head, else what to do.

    :raises sqlalchemy.exc.SQLAlchemyError: the database does not answer.
    """
    from alembic.config import Config as AlembicConfig  # only /readyz needs alembic
    from alembic.script import ScriptDirectory

    with sessions() as session:
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = ScriptDirectory.from_config(AlembicConfig(str(ALEMBIC_INI))).get_current_head()
    return "ok" if version == head else f"at {version}, head is {head}: run alembic upgrade head"
