"""Alembic environment: the URL from DATABASE_URL (or ``-x url=…``), the models' metadata."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from app.config import normalise_database_url
from app.models import Base

target_metadata = Base.metadata


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set (e.g. postgresql://user:pass@host/db)")
    problems: list[str] = []
    url = normalise_database_url(url, problems)
    if problems:
        raise SystemExit(problems[0])
    return url


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(database_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
