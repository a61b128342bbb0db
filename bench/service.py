"""Service benchmark: uploads through the whole stack against in-process analysis, same run.

    .venv/bin/python bench/service.py [--uploads 40] [--seconds 30]

Starts the embedded stack (``phantomchain dev``'s: NATS, PostgreSQL, the web process
``python -m app.api.server`` — waitress, one process — and two ``dramatiq`` worker processes)
in a temporary directory, then:

* uploads N synthesized MP3 tracks (8 at a time) and waits for every analysis: jobs per minute
  and upload → done latency p50/p95;
* streams a 200 MB WAV upload while sampling the web process's RSS (goal: grows < 30 MB; the
  server spools the body to a temporary file, the app streams it from there to storage);
* runs ``phantomchain analyze --jobs 2 --formats mp3`` on the same files (the same audio work in
  two processes, no servers) for the in-process throughput.

The last line is ``service/in-process throughput: X.XX`` (goal ≥ 0.90).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from app.cli.dev import Stack  # noqa: E402
from app.embedded.nats_server import free_port  # noqa: E402


def make_tracks(folder: Path, count: int, seconds: float) -> list[Path]:
    from audio.transcode import AudioEncoder
    from tests.unit.audio.music import TONICS, synthesize_track

    paths = []
    for i in range(count):
        track = synthesize_track(
            80 + (i * 7) % 100, TONICS[i % 12], "minor" if i % 2 else "major", seconds, 44100, i
        )
        path = folder / f"track{i:03d}.mp3"
        with AudioEncoder(path, "mp3", in_rate=44100, in_channels=2) as encoder:
            encoder.write(track.samples)
        paths.append(path)
    return paths


def make_big_wav(path: Path, megabytes: int = 200) -> None:
    import numpy as np

    from audio.transcode import AudioEncoder

    seconds = megabytes * 1024 * 1024 / (44100 * 4)
    rng = np.random.default_rng(0)
    with AudioEncoder(path, "wav", in_rate=44100, in_channels=2) as encoder:
        for _ in range(int(seconds // 10)):
            encoder.write((rng.standard_normal((2, 441000)) * 0.05).astype(np.float32))


def multipart(path: Path):
    """A streaming multipart body (never in memory whole) and its headers."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                yield chunk
        yield tail

    length = len(head) + path.stat().st_size + len(tail)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(length)}  # fmt: skip
    return body(), headers


def post(base: str, path: Path) -> dict:
    body, headers = multipart(path)
    request = urllib.request.Request(f"{base}/api/uploads", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def wait_all(database_url: str, job_ids: list[str]) -> tuple[list[float], float]:
    """Upload → done latencies, and when the last job finished (epoch seconds), from the jobs'
    own timestamps; one cheap query a second, so watching takes no CPU from the service and the
    polling interval does not count as service time."""
    import psycopg

    while True:
        with psycopg.connect(database_url) as connection:
            rows = connection.execute(
                "SELECT status, EXTRACT(EPOCH FROM finished_at - created_at), "
                "EXTRACT(EPOCH FROM finished_at) FROM jobs WHERE id = ANY(%s)",
                (job_ids,),
            ).fetchall()
        if len(rows) == len(job_ids) and all(row[0] in ("done", "failed") for row in rows):
            failed = [r for r in rows if r[0] != "done"]
            if failed:
                raise SystemExit(f"{len(failed)} jobs failed")
            last = max(float(finished) for _, _, finished in rows)
            return sorted(float(latency) for _, latency, _ in rows), last
        time.sleep(1.0)


def api_rss(stack: Stack) -> int:
    """RSS of the web process (the stack's last child; it forks nothing, but count any child)."""
    web = stack.children[-1]
    family = [psutil.Process(web.pid), *psutil.Process(web.pid).children(recursive=True)]
    return sum(p.memory_info().rss for p in family if p.is_running())


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) used so far by each part of the stack."""

    def tree(pid: int) -> float:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    workers, web = stack.children
    postgres = [
        p for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(stack.var) in " ".join(p.info["cmdline"] or [])
    ]  # fmt: skip
    return {
        "workers": tree(workers.pid),
        "api": tree(web.pid),
        "postgres": sum(tree(p.pid) for p in postgres if p.ppid() not in {q.pid for q in postgres}),
        "nats-server": tree(stack.nats.process.pid),
        "benchmark client": sum(psutil.Process().cpu_times()[:2]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    tracks = make_tracks(folder, args.uploads, args.seconds)
    port = free_port()
    os.environ["WORKER_PROCESSES"] = "2"  # before the stack reads its settings
    os.environ["WORKER_THREADS"] = os.environ.get("BENCH_WORKER_THREADS", "1")
    os.environ["METRICS_PORT"] = str(free_port())  # served, as in production; never a clash
    os.environ["WORKER_METRICS_PORT"] = str(free_port())
    stack = Stack(folder / "var", port)
    base = f"http://127.0.0.1:{port}"
    try:
        stack.start()
        time.sleep(2)
        cpu_before = cpu_seconds(stack)
        started = time.time()  # wall clock: compared with Postgres' finished_at, same machine
        with ThreadPoolExecutor(8) as pool:
            job_ids = [accepted["job_id"] for accepted in pool.map(lambda p: post(base, p), tracks)]
        latencies, last_finished = wait_all(stack.postgres.url("phantomchain"), job_ids)
        service_s = last_finished - started
        cpu_after = cpu_seconds(stack)
        cpu_used = {part: cpu_after[part] - cpu_before[part] for part in cpu_after}
        big = folder / "big.wav"
        make_big_wav(big)
        before = api_rss(stack)
        peak = before
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, api_rss(stack))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        post(base, big)
        done.set()
        sampler.join()
    finally:
        stack.stop()
    out = folder / "inprocess"
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "analyze", "--json",
         "--jobs", "2", "--formats", "mp3", "--out", str(out), *map(str, tracks)],
        check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    inprocess_s = time.monotonic() - t0
    ratio = inprocess_s / service_s
    print(f"\n{args.uploads} uploads of {args.seconds:.0f} s MP3, 2 worker processes, 2 cores\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| service: jobs per minute | {60 * args.uploads / service_s:.1f} |")
    print(f"| upload → done latency p50 / p95 | {statistics.median(latencies):.2f} s / "
          f"{latencies[int(0.95 * (len(latencies) - 1))]:.2f} s |")  # fmt: skip
    per_minute = 60 * args.uploads / inprocess_s
    print(f"| `phantomchain analyze --jobs 2`: files per minute | {per_minute:.1f} |")
    growth = (peak - before) / 2**20
    print(f"| API RSS growth during a 200 MB upload | {growth:.1f} MB (goal < 30) |")
    spent = ", ".join(f"{part} {seconds:.1f} s" for part, seconds in cpu_used.items())
    print(f"| CPU during the service run ({2 * service_s:.1f} core-s available) | {spent} |")
    print(f"\nservice/in-process throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
