"""Service benchmark: uploads through the whole stack against in-process analysis, same run.

    .venv/bin/python bench/service.py [--uploads 40] [--seconds 30] [--storage s3]

Starts the embedded stack (``phantomchain dev``'s: NATS, PostgreSQL, the web process
``python -m app.server`` — waitress, one process — and two ``dramatiq`` worker processes)
in a temporary directory, then:

* uploads N synthesized MP3 tracks (8 at a time) and waits for every analysis: jobs per minute
  and upload → done latency p50/p95;
* streams a 200 MB WAV upload while sampling the web process's RSS (goal: grows < 30 MB; the
  server spools the body to a temporary file, the app streams it from there to storage);
* runs ``phantomchain analyze --jobs 2 --formats mp3`` on the same files (the same audio work in
  two processes, no servers) for the in-process throughput.

The last line is ``service/in-process throughput: X.XX`` (goal ≥ 0.90).

``--storage s3`` measures the stack twice in the same run: on the local disk, then with
``STORAGE_URL=s3://…`` on a moto S3 server (``moto[server]``) the benchmark starts in a process
of its own; the table has a column for each, and the last lines give both ratios and
``s3/local service throughput: X.XX``. (moto keeps objects in memory and answers from one
Python process: a slower S3 than a real one, on the same cores as the stack.)
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from app.cli.dev import Stack  # noqa: E402
from app.embedded.nats_server import free_port, port_answers  # noqa: E402


def make_tracks(folder: Path, count: int, seconds: float) -> list[Path]:
    from audio.transcode import AudioEncoder
    from tests.support.audio.music import TONICS, synthesize_track

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
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(length),
    }
    return body(), headers


def post(base: str, path: Path) -> dict:
    body, headers = multipart(path)
    request = urllib.request.Request(f"{base}/api/uploads", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def ended_jobs(database_url: str, job_ids: list[str]) -> list[tuple[float, float]]:
    """``(created, finished)`` of each job, epoch seconds, once every one is done; one cheap
    query a second, so watching takes no CPU from the service and the polling interval does
    not count as service time.

    :raises SystemExit: a job failed.
    """
    import psycopg

    while True:
        with psycopg.connect(database_url) as connection:
            rows = connection.execute(
                "SELECT status, EXTRACT(EPOCH FROM created_at), EXTRACT(EPOCH FROM finished_at) "
                "FROM jobs WHERE id = ANY(%s)",
                (job_ids,),
            ).fetchall()
        if len(rows) == len(job_ids) and all(row[0] in ("done", "failed") for row in rows):
            failed = [r for r in rows if r[0] != "done"]
            if failed:
                raise SystemExit(f"{len(failed)} jobs failed")
            return [(float(created), float(finished)) for _, created, finished in rows]
        time.sleep(1.0)


def wait_all(database_url: str, job_ids: list[str]) -> tuple[list[float], float]:
    """Upload → done latencies, and when the last job finished (epoch seconds), from the jobs'
    own timestamps (:func:`ended_jobs`)."""
    ended = ended_jobs(database_url, job_ids)
    latencies = sorted(finished - created for created, finished in ended)
    return latencies, max(finished for _, finished in ended)


def api_rss(stack: Stack) -> int:
    """RSS of the web process (the stack's last child; it forks nothing, but count any child)."""
    web = stack.children[-1]
    family = [psutil.Process(web.pid), *psutil.Process(web.pid).children(recursive=True)]
    return sum(p.memory_info().rss for p in family if p.is_running())


def cpu_seconds(stack: Stack, s3: subprocess.Popen | None = None) -> dict[str, float]:
    """CPU time (user + system) used so far by each part of the stack (and the S3 server)."""

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

    *workers, web = stack.children  # the pipeline's workers (and the webhooks'), the API
    postgres = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(stack.var) in " ".join(p.info["cmdline"] or [])
    ]
    used = {
        "workers": sum(tree(worker.pid) for worker in workers),
        "api": tree(web.pid),
        "postgres": sum(tree(p.pid) for p in postgres if p.ppid() not in {q.pid for q in postgres}),
        "nats-server": tree(stack.nats.process.pid),
        "benchmark client": sum(psutil.Process().cpu_times()[:2]),
    }
    if s3 is not None:
        used["S3 (moto)"] = tree(s3.pid)
    return used


@dataclass
class ServiceRun:
    """One measurement of the stack on one storage."""

    storage: str
    service_s: float
    latencies: list[float]
    rss_growth_mb: float
    cpu_used: dict[str, float]


#: The bucket and prefix of the S3 run, with moto's fake credentials (moto takes any).
S3_BUCKET = "phantomchain-bench"


def start_moto(folder: Path) -> tuple[subprocess.Popen, str]:
    """moto's S3 server in a process of its own on a free port, with the bench's bucket; the
    process and its ``STORAGE_URL``."""
    import boto3

    port = free_port()
    with (folder / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not port_answers("127.0.0.1", port):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit(f"moto's server did not start; see {folder / 'moto.log'}")
        time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket=S3_BUCKET)
    url = (
        f"s3://{S3_BUCKET}/service?endpoint_url={endpoint}&path_style=1&region=us-east-1"
        "&access_key_id=bench&secret_access_key=bench"
    )
    return process, url


def run_service(folder: Path, tracks: list[Path], storage: str) -> ServiceRun:
    """Start the stack on ``storage`` (``file`` or ``s3``), upload ``tracks`` and wait for
    them, then stream the 200 MB WAV while sampling the API's memory; stop everything."""
    var = folder / f"var-{storage}"
    moto = None
    if storage == "s3":
        moto, os.environ["STORAGE_URL"] = start_moto(folder)
    else:
        os.environ["STORAGE_URL"] = f"file://{var / 'storage'}"
    port = free_port()
    os.environ["METRICS_PORT"] = str(free_port())  # served, as in production; never a clash
    os.environ["WORKER_METRICS_PORT"] = str(free_port())
    stack = Stack(var, port)
    base = f"http://127.0.0.1:{port}"
    try:
        stack.start()
        time.sleep(2)
        cpu_before = cpu_seconds(stack, moto)
        started = time.time()  # wall clock: compared with Postgres' finished_at, same machine
        with ThreadPoolExecutor(8) as pool:
            job_ids = [accepted["job_id"] for accepted in pool.map(lambda p: post(base, p), tracks)]
        latencies, last_finished = wait_all(stack.postgres.url("phantomchain"), job_ids)
        service_s = last_finished - started
        cpu_after = cpu_seconds(stack, moto)
        cpu_used = {part: cpu_after[part] - cpu_before[part] for part in cpu_after}
        big = folder / "big.wav"
        if not big.exists():
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
        if moto is not None:
            moto.terminate()
            moto.wait(10)
    return ServiceRun(storage, service_s, latencies, (peak - before) / 2**20, cpu_used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--storage",
        choices=("file", "s3"),
        default="file",
        help="s3: measure on the local disk, then on a moto S3 server, and compare",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    tracks = make_tracks(folder, args.uploads, args.seconds)
    os.environ["WORKER_PROCESSES"] = "2"  # before the stack reads its settings
    os.environ["WORKER_THREADS"] = os.environ.get("BENCH_WORKER_THREADS", "1")
    storages = ["file", "s3"] if args.storage == "s3" else ["file"]
    runs = [run_service(folder, tracks, storage) for storage in storages]
    out = folder / "inprocess"
    t0 = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            "analyze",
            "--json",
            "--jobs",
            "2",
            "--formats",
            "mp3",
            "--out",
            str(out),
            *map(str, tracks),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    inprocess_s = time.monotonic() - t0
    names = {"file": "local disk", "s3": "S3 (moto)"}

    def row(measure: str, values: list[str]) -> None:
        print(f"| {measure} | {' | '.join(values)} |")

    print(f"\n{args.uploads} uploads of {args.seconds:.0f} s MP3, 2 worker processes, 2 cores\n")
    if len(runs) == 1:
        print("| measure | value |\n|---|---|")
    else:
        print(f"| measure | {' | '.join(names[run.storage] for run in runs)} |")
        print("|---|" + "---|" * len(runs))
    row("service: jobs per minute", [f"{60 * args.uploads / run.service_s:.1f}" for run in runs])
    row(
        "upload → done latency p50 / p95",
        [
            f"{statistics.median(run.latencies):.2f} s / "
            f"{run.latencies[int(0.95 * (len(run.latencies) - 1))]:.2f} s"
            for run in runs
        ],
    )
    per_minute = f"{60 * args.uploads / inprocess_s:.1f}"
    row("`phantomchain analyze --jobs 2`: files per minute", [per_minute] * len(runs))
    row(
        "API RSS growth during a 200 MB upload (goal < 30)",
        [f"{run.rss_growth_mb:.1f} MB" for run in runs],
    )
    row(
        "CPU during the service run",
        [
            f"{2 * run.service_s:.1f} core-s available: "
            + ", ".join(f"{part} {seconds:.1f} s" for part, seconds in run.cpu_used.items())
            for run in runs
        ],
    )
    print()
    for run in runs:
        label = "" if len(runs) == 1 else f" ({names[run.storage]})"
        print(f"service/in-process throughput{label}: {inprocess_s / run.service_s:.2f}")
    if len(runs) == 2:
        print(f"s3/local service throughput: {runs[0].service_s / runs[1].service_s:.2f}")


if __name__ == "__main__":
    main()
