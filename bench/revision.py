"""Another git revision of this repository, checked out beside the tree for a benchmark's peer.

A benchmark that compares this tree with an earlier revision runs each side in a process of its
own, started **in that side's folder** (``cwd=``) with ``PYTHONPATH`` set to it: Python puts the
working folder ahead of ``PYTHONPATH`` for ``python -c``, so a peer started from this tree's
folder would import this tree and compare it with itself.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def checked_out(revision: str, folder: Path) -> Iterator[Path]:
    """``revision`` as a detached git worktree at ``folder`` (which must not exist yet),
    removed again on leaving, whatever happened inside."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
            capture_output=True,
        )
