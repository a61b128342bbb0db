"""Code run in a fresh interpreter of the project (its own folder, a bare environment), for the
tests that check what a process imports: nothing already loaded by the test run can hide an
import."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.paths import ROOT


def last_json_line(code: str) -> object:
    """Run ``code`` (which prints JSON last) in a fresh interpreter; what it printed last.

    :raises AssertionError: the code failed (with its stderr).
    """
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` are loaded once ``code`` ran, in a fresh interpreter."""
    listed = f"[m for m in {modules!r} if m in sys.modules]"
    found = last_json_line(f"import json, sys\n{code}\nprint(json.dumps({listed}))")
    assert isinstance(found, list)
    return found
