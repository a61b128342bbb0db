"""``phantomchain --help`` stays quick: the command loads no database, broker or audio library
until a command that needs one runs."""

from __future__ import annotations

from tests.support import fresh_python

HEAVY = ("sqlalchemy", "psycopg", "dramatiq", "nats", "av", "numpy", "scipy", "tasks")


def loaded_after(code: str) -> list[str]:
    return fresh_python.loaded_after(code, HEAVY)


def test_the_command_group_loads_nothing_heavy():
    assert loaded_after("from app.cli import main") == []


def test_the_probe_sees_what_a_command_loads():
    assert "sqlalchemy" in loaded_after("from app.cli import main\nimport app.db")
