"""A sender's machine has the package, not the server's stack: importing the client (and the
sender commands) loads no web framework, database driver, audio library or NATS client."""

from __future__ import annotations

from tests.support import fresh_python

SERVER_SIDE = (
    "flask",
    "werkzeug",
    "sqlalchemy",
    "psycopg",
    "numpy",
    "scipy",
    "av",
    "nats",
    "dramatiq",
    "tasks",
    "audio",
)


def loaded_after(code: str) -> list[str]:
    """The server-side modules loaded once ``code`` ran, in a fresh interpreter."""
    return fresh_python.loaded_after(code, SERVER_SIDE)


def test_the_client_loads_nothing_of_the_server():
    assert loaded_after("from app.client import Client") == []


def test_the_send_commands_load_nothing_of_the_server():
    # the command group's ``analyze`` names its formats from ``audio.formats`` (plain Python);
    # the audio stack itself — PyAV, numpy — stays out
    assert loaded_after("import app.cli.send") == ["audio"]


def test_the_probe_sees_a_server_module():
    assert loaded_after("from app.client import Client\nimport flask") == ["flask", "werkzeug"]
