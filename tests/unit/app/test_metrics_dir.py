"""Each master counts into a fresh directory; directories of masters that are gone are removed."""

from __future__ import annotations

import os
import subprocess
import sys

from app import metrics
from app.metrics import MULTIPROC_ENV, process_identity, use_multiprocess_dir


def test_fresh_directory_per_owner_and_stale_ones_removed(tmp_path, monkeypatch):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.setattr(metrics, "_directory", None)  # this process counts in memory again after
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f"web-{gone.stdout.strip()}-1"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"old")
    other_role = tmp_path / f"worker-{gone.stdout.strip()}-1"
    other_role.mkdir()

    directory = use_multiprocess_dir(tmp_path, "web", os.getpid())

    assert directory == tmp_path / f"web-{process_identity(os.getpid())}"
    assert directory.is_dir() and not any(directory.iterdir())
    assert os.environ[MULTIPROC_ENV] == str(directory)
    assert not stale.exists()
    assert other_role.exists()  # another role's directories are its own master's business
    # The same live owner again (a second worker process of one master): kept, not wiped.
    (directory / "counter_2.db").write_bytes(b"live")
    assert use_multiprocess_dir(tmp_path, "web", os.getpid()) == directory
    assert (directory / "counter_2.db").exists()


def test_identity_tells_a_reused_pid_apart():
    identity = process_identity(os.getpid())
    assert identity.startswith(f"{os.getpid()}-")
    assert identity == process_identity(os.getpid())
