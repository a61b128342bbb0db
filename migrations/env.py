"""Alembic environment: the URL from DATABASE_URL (or ``-x url=…``), the models' metadata."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from app.config import ConfigError, migration_database_url
from app.models import Base

target_metadata = Base.metadata


def database_url() -> str:
    try:
        return migration_database_url(context.get_x_argument(as_dictionary=True).get("url"))
    except ConfigError as error:
        raise SystemExit(str(error)) from None


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
