"""``phantomchain --help`` stays quick: the command loads no database, broker or audio library
until a command that needs one runs."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.paths import ROOT

HEAVY = ("sqlalchemy", "psycopg", "dramatiq", "nats", "av", "numpy", "scipy", "tasks")


def loaded_after(code: str) -> list[str]:
    probe = (
        f"import json, sys\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_command_group_loads_nothing_heavy():
    assert loaded_after("from app.cli import main") == []


def test_the_probe_sees_what_a_command_loads():
    assert "sqlalchemy" in loaded_after("from app.cli import main\nimport app.db")
