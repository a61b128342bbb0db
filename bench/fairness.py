"""Fair shares: one tenant's upload behind another tenant's batch, against the batch itself.

    .venv/bin/python bench/fairness.py [--batch 40] [--seconds 30] [--repeat 3]

Starts the embedded stack (``phantomchain dev``'s: NATS, PostgreSQL, the web process and two
``dramatiq`` worker processes) with two tenants, then, ``--repeat`` times:

* tenant B uploads one track on the idle stack: its upload → done time (the jobs' own
  timestamps), the *idle* time;
* tenant A posts a batch of ``--batch`` such tracks, and tenant B uploads one right after the
  batch is answered: B's upload → done, the *loaded* time, and the batch's own time (first
  job created → last job finished), which is what B would wait first come, first served.

The last lines are ``B loaded/idle: X.XX`` (goal ≤ 3) and ``batch/B idle: X.XX`` (the peer:
first come, first served, the whole batch). A second stack started with ``TENANT_MAX_RUNNING``
is not measured: a cap only makes B's share larger.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli.dev import Stack  # noqa: E402
from app.embedded.nats_server import free_port  # noqa: E402
from bench.service import ended_jobs, make_tracks  # noqa: E402

TOKENS = {"alpha": "bench-token-alpha-0123456789", "beta": "bench-token-beta-0123456789"}


def post_files(base: str, path: str, token: str, files: list[Path]) -> dict:
    """POST ``files`` as multipart fields named ``file`` (in memory: a few MB of MP3)."""
    boundary = uuid.uuid4().hex
    parts = []
    for file in files:
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{file.name}"\r\nContent-Type: audio/mpeg\r\n\r\n'
            ).encode()
            + file.read_bytes()
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{base}{path}",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": f"Bearer {token}",
        },
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def times(database_url: str, job_ids: list[str]) -> tuple[float, float]:
    """(first created, last finished) of ``job_ids`` once all are done, in epoch seconds."""
    ended = ended_jobs(database_url, job_ids)
    return min(created for created, _ in ended), max(finished for _, finished in ended)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    tracks = make_tracks(folder, args.batch + 1, args.seconds)
    os.environ["WORKER_PROCESSES"] = "2"
    os.environ["WORKER_THREADS"] = "1"
    os.environ["API_TOKENS"] = ",".join(f"{t}:{token}" for t, token in TOKENS.items())
    os.environ["METRICS_PORT"] = str(free_port())
    os.environ["WORKER_METRICS_PORT"] = str(free_port())
    os.environ["STORAGE_URL"] = f"file://{folder / 'var' / 'storage'}"
    port = free_port()
    stack = Stack(folder / "var", port)
    base = f"http://127.0.0.1:{port}"
    database_url = ""
    idle, loaded, batch = [], [], []
    try:
        stack.start()
        assert stack.postgres is not None
        database_url = stack.postgres.url("phantomchain")
        post_files(base, "/api/uploads", TOKENS["beta"], [tracks[-1]])  # warm up
        for _ in range(args.repeat):
            job = post_files(base, "/api/uploads", TOKENS["beta"], [tracks[-1]])["job_id"]
            created, finished = times(database_url, [job])
            idle.append(finished - created)
            made = post_files(base, "/api/batches", TOKENS["alpha"], tracks[: args.batch])
            job = post_files(base, "/api/uploads", TOKENS["beta"], [tracks[-1]])["job_id"]
            created, finished = times(database_url, [job])
            loaded.append(finished - created)
            jobs = [each["job_id"] for each in made["jobs"]]
            first, last = times(database_url, jobs)
            batch.append(last - first)
    finally:
        stack.stop()
    b_idle, b_loaded, whole = (statistics.median(x) for x in (idle, loaded, batch))
    print(f"\nbatch of {args.batch} × {args.seconds:.0f} s MP3 (tenant A), one more (tenant B)")
    print("2 worker processes, 1 thread each; medians of", args.repeat, "rounds\n")
    print("| measure | seconds | each round |\n|---|---|---|")
    for name, value, values in (
        ("B alone (idle stack)", b_idle, idle),
        ("B right after A's batch", b_loaded, loaded),
        ("A's batch, first job to last", whole, batch),
    ):
        print(f"| {name} | {value:.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    print(f"\nB loaded/idle: {b_loaded / b_idle:.2f}")
    print(f"batch/B idle: {whole / b_idle:.2f}")


if __name__ == "__main__":
    main()
