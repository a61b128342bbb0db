"""Service benchmark: uploads through the whole stack against in-process analysis, same run.

    .venv/bin/python bench/service.py [--uploads 40] [--seconds 30] [--storage s3]
    .venv/bin/python bench/service.py --latency [--seconds 180] [--repeat 3]

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

``--latency [--seconds 180] [--repeat 3]`` measures one upload instead, on an idle stack (issue
#27: within 1.1× of the same work in-process). The stack starts as ``make run`` starts it (its
defaults: two worker processes of one thread); once it is idle (:func:`wait_idle`) one
synthesized MP3 is uploaded with ``formats=mp3``, and its job's event stream followed (``GET
/api/jobs/{id}/events``, as the web page follows it: the API's own word that the job is done,
and no polling load); the time from the start of the upload request to reading ``done`` there
is its latency. One upload warms the workers and is discarded; then ``--repeat`` uploads, each
next to a run of the in-process peer on the same idle stack (which of the two goes first
alternates) — :func:`inprocess_job`: the audio calls the stages make for that job, in their
order, with the same bounds, in this warm process (one run discarded) — decode once with the MP3
encoder and every feature analyzer attached, the MP3's ReplayGain measured from the MP3 and
tagged; the loudness, checks and album histogram; tempo and key; the waveform's PNG and JSON.
That is all
the audio work the service does for the job, and nothing else: what the service adds is
storage, the database, the queue and the features archive between stages. The table splits the
service's time from the job's own records (its ``created_at``, each stage's ``started`` and
completion events, ``finished_at``): the upload request, each stage as its worker ran it (with
the in-process time of the same audio work beside it), each hand-off between stages, and the
event stream's delay in telling the end; then the CPU the whole stack used per upload against
this process's for the peer (a figure other load on the machine hardly moves). The last line is
``service/in-process latency: X.XX`` (goal ≤ 1.10): the median over the pairs of each upload's
latency over its in-process neighbour's, which load that comes and goes on a shared machine
moves less than a ratio of two medians (also printed).

``--storage s3`` measures the stack twice in the same run: on the local disk, then with
``STORAGE_URL=s3://…`` on a moto S3 server (``moto[server]``) the benchmark starts in a process
of its own; the table has a column for each, and the last lines give both ratios and
``s3/local service throughput: X.XX``. (moto keeps objects in memory and answers from one
Python process: a slower S3 than a real one, on the same cores as the stack.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
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


def multipart(path: Path, fields: dict[str, str] | None = None):
    """A streaming multipart body (never in memory whole) and its headers; ``fields``: form
    fields sent before the file."""
    boundary = uuid.uuid4().hex
    head = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (fields or {}).items()
        ).encode()
        + (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )
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


def post(base: str, path: Path, fields: dict[str, str] | None = None) -> dict:
    body, headers = multipart(path, fields)
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


# -- one upload's latency (--latency) ----------------------------------------------------------

#: Seconds of a window in which the whole stack used less than IDLE_CPU of a core: idle.
IDLE_WINDOW_S = 1.0
IDLE_CPU = 0.05


def stack_processes(stack: Stack) -> list[psutil.Process]:
    """Every process of the stack: its children's trees, PostgreSQL's, nats-server."""
    roots = [*(child.pid for child in stack.children), stack.nats.process.pid]
    roots += [
        p.pid
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(stack.var) in " ".join(p.info["cmdline"] or [])
    ]
    found: dict[int, psutil.Process] = {}
    for pid in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                found[process.pid] = process
    return list(found.values())


def wait_idle(stack: Stack, limit_s: float = 120.0) -> None:
    """Until the stack has used less than :data:`IDLE_CPU` of a core for two windows running
    (started, migrated, the last job's webhooks and workers' bookkeeping settled)."""

    def used() -> float:
        total = 0.0
        for process in stack_processes(stack):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    quiet, deadline = 0, time.monotonic() + limit_s
    while quiet < 2 and time.monotonic() < deadline:
        before = used()
        time.sleep(IDLE_WINDOW_S)
        quiet = quiet + 1 if used() - before < IDLE_CPU * IDLE_WINDOW_S else 0


def job_timeline(database_url: str, job_id: str) -> tuple[float, float, list[tuple[float, str]]]:
    """``(created, finished, events)`` of an ended job, epoch seconds; each event ``(at,
    message)`` in order.

    :raises SystemExit: the job is not done.
    """
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT status, error, EXTRACT(EPOCH FROM created_at), "
            "EXTRACT(EPOCH FROM finished_at) FROM jobs WHERE id = %s",
            (job_id,),
        ).fetchone()
        if row is None or row[0] != "done":
            raise SystemExit(f"job {job_id} is not done: {row}")
        events = connection.execute(
            "SELECT EXTRACT(EPOCH FROM at), message FROM job_events WHERE job_id = %s ORDER BY id",
            (job_id,),
        ).fetchall()
    return float(row[2]), float(row[3]), [(float(at), message) for at, message in events]


@dataclass
class Latency:
    """One upload through the stack: its phases in seconds, in order (they add up to total)."""

    total: float
    phases: dict[str, float]
    cpu_s: float = 0.0  # CPU time the whole stack used meanwhile


def stack_cpu(stack: Stack) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each process of the stack, by pid."""
    used = {}
    for process in stack_processes(stack):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            used[process.pid] = times.user + times.system
    return used


def phases_of(sent: float, created: float, finished: float, events) -> dict[str, float]:
    """Split request start → done into what the stack did, from the job's own records: the
    upload request until the job's row, each stage as its worker ran it (``<stage> started`` →
    its completion event: the work, its reads and writes) and each hand-off between two (a
    completion → the next ``started``: its message sent, fetched, ``begin_stage``)."""
    phases = {"upload request → job row": created - sent}
    last, after = created, None  # after: the stage whose completion was the last event
    for at, message in events:
        if message.endswith(" started"):
            stage = message.removesuffix(" started")
            phases["queue → transcode" if after is None else f"hand-off → {stage}"] = at - last
            after = stage
        elif message == "done":
            continue  # job_done's own event: its finished_at ends the job (below)
        else:  # the completion line of the stage that started last
            phases[f"{after} (worker)"] = at - last
        last = at
    phases["hand-off → job_done (finished_at)"] = finished - last
    return phases


def follow_events(base: str, job_id: str) -> tuple[float, str]:
    """Follow the job's event stream (``GET /api/jobs/{id}/events``, as a browser does) until
    it says the job ended: when this client read that (epoch seconds), and the status."""
    last_id = "0"
    while True:
        url = f"{base}/api/jobs/{job_id}/events?last_event_id={last_id}"
        with urllib.request.urlopen(url, timeout=600) as stream:
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    last_id = line.removeprefix("id: ")
                elif line.startswith("event: ") and line != "event: progress":
                    return time.time(), line.removeprefix("event: ")
        # The stream's time was up before the job's end: reconnect after the last event seen.


def upload_once(base: str, stack: Stack, track: Path) -> Latency:
    """Upload ``track`` (``formats=mp3``) and follow its job's event stream until ``done``:
    request start → this client reads ``done``; the phases from the job's records."""
    assert stack.postgres is not None
    cpu_before = stack_cpu(stack)
    sent = time.time()  # wall clock: compared with Postgres' timestamps, same machine
    accepted = post(base, track, {"formats": "mp3"})
    seen, status = follow_events(base, accepted["job_id"])
    cpu_after = stack_cpu(stack)
    if status != "done":
        raise SystemExit(f"job {accepted['job_id']} ended {status}")
    timeline = job_timeline(stack.postgres.url("phantomchain"), accepted["job_id"])
    phases = phases_of(sent, *timeline)
    phases["finished_at → the event stream says done"] = seen - timeline[1]
    cpu = sum(used - cpu_before.get(pid, 0.0) for pid, used in cpu_after.items())
    return Latency(seen - sent, phases, cpu)


def inprocess_job(source: Path, folder: Path) -> dict[str, float]:
    """The audio work the pipeline's stages do for a ``formats=mp3`` job, in this process: the
    stages' own audio calls in their order, with the same bounds, and nothing else (no
    storage, database, queue nor features archive). Seconds per stage."""
    from app.config import Config
    from audio.features import extract
    from audio.replaygain import GatingHistogram, output_replaygain, track_replaygain, write_tags
    from audio.tempo_range import tempo_in_range
    from audio.transcode import AudioEncoder
    from audio.verdicts import REASON_KEYS, VALUE_KEYS, failed_checks
    from tasks.stages import MB, _check_output_size, bounds

    config = Config.from_env({**os.environ, "DATABASE_URL": "postgresql://unused/unused"})
    never = lambda: False  # noqa: E731 - the stages' should_stop, for a job never canceled
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder) as out:
        max_output_bytes = config.max_output_mb * MB

        def encoders(rate: int, channels: int) -> list[AudioEncoder]:
            return [
                AudioEncoder(
                    Path(out) / "out.mp3",
                    "mp3",
                    in_rate=rate,
                    in_channels=channels,
                    measure=True,  # as the stage: measured while encoded, for its ReplayGain
                    threaded=config.encode_on_own_thread,  # as the stack's workers decide
                )
            ]

        features, writers = extract(
            source,
            encoders=encoders,
            max_output_bytes=max_output_bytes,
            should_stop=never,
            **bounds(config),
        )
        results = [writer.close() for writer in writers]
        _check_output_size(results, max_output_bytes, features.info.duration_s)
        loudness = features.loudness.result()
        for result, writer in zip(results, writers, strict=True):
            gain = output_replaygain(
                result.path,
                result.format,
                source=loudness,
                source_rate=features.loudness.sample_rate,
                source_channels=features.loudness.channels,
                measured=writer.measured.loudness if writer.measured else None,
                should_stop=never,
                timeout_s=config.decode_timeout_s,
            )
            write_tags(result.path, result.format, gain)
    t1 = time.perf_counter()
    seconds["transcode"] = t1 - t0
    silence = features.silence.result()
    checks = features.checks(loudness).to_dict()
    record = {**loudness.to_dict(), **checks, "channels": features.info.channels}
    failed_checks(record)
    _ = {key: checks[key] for key in VALUE_KEYS}, {k: checks[k] for k in REASON_KEYS}
    json.dumps(GatingHistogram.from_meter(features.loudness).to_dict())
    track_replaygain(loudness).to_dict()
    silence.to_dict()
    t2 = time.perf_counter()
    seconds["loudness"] = t2 - t1
    tempo, key = tempo_in_range(features.tempo, None), features.key.result()
    [round(b, 3) for b in tempo.beats]
    _ = key.camelot
    t3 = time.perf_counter()
    seconds["tempo_key"] = t3 - t2
    waveform = features.waveform.result()
    waveform.render_png(io.BytesIO())
    json.dumps(waveform.to_audiowaveform_json())
    seconds["finalize"] = time.perf_counter() - t3
    return seconds


def run_latency(folder: Path, seconds: float, repeat: int) -> None:
    """``--latency``: one upload at a time on an idle stack against the in-process peer,
    interleaved (each service upload next to an in-process run on the same, idle stack, which
    goes first in turn)."""
    track = make_tracks(folder, 1, seconds)[0]
    inprocess_job(track, folder)  # warm: imports, caches, first-touch; discarded
    var = folder / "var-latency"
    os.environ["STORAGE_URL"] = f"file://{var / 'storage'}"
    os.environ["METRICS_PORT"] = str(free_port())
    os.environ["WORKER_METRICS_PORT"] = str(free_port())
    port = free_port()
    stack = Stack(var, port)
    base = f"http://127.0.0.1:{port}"
    service: list[Latency] = []
    inprocess: list[dict[str, float]] = []
    inprocess_cpu: list[float] = []

    def peer() -> None:
        cpu = time.process_time()
        inprocess.append(inprocess_job(track, folder))
        inprocess_cpu.append(time.process_time() - cpu)

    try:
        stack.start()
        wait_idle(stack)
        upload_once(base, stack, track)  # warm: the workers' first imports; discarded
        for i in range(repeat):
            wait_idle(stack)
            if i % 2:  # alternate which goes first: a change in the machine's load hits both
                peer()
                wait_idle(stack)
            service.append(upload_once(base, stack, track))
            if not i % 2:
                wait_idle(stack)
                peer()
    finally:
        stack.stop()
    service_s = statistics.median(run.total for run in service)
    inprocess_s = statistics.median(sum(run.values()) for run in inprocess)
    config = stack.config
    print(
        f"\none {seconds:.0f} s MP3 upload, formats=mp3, on an idle `make run` stack "
        f"({config.worker_processes}×{config.worker_threads} workers); median of {repeat}\n"
    )
    print("| phase | service (s) | in-process (s) | service extra (s) |\n|---|---|---|---|")
    names = list(dict.fromkeys(name for run in service for name in run.phases))
    for name in names:
        svc = statistics.median(run.phases.get(name, 0.0) for run in service)
        stage = name.removesuffix(" (worker)")
        if stage != name and stage in inprocess[0]:
            own = statistics.median(run[stage] for run in inprocess)
            print(f"| {name} | {svc:.3f} | {own:.3f} | {svc - own:.3f} |")
        else:
            print(f"| {name} | {svc:.3f} | – | {svc:.3f} |")
    print(
        f"| **upload → done** | {service_s:.3f} | {inprocess_s:.3f} "
        f"| {service_s - inprocess_s:.3f} |"
    )
    print(
        f"\nservice runs: {', '.join(f'{run.total:.2f}' for run in service)} s; in-process: "
        + ", ".join(f"{sum(run.values()):.2f}" for run in inprocess)
        + " s"
    )
    service_cpu = statistics.median(run.cpu_s for run in service)
    print(
        f"CPU (whole stack / this process): {service_cpu:.2f} s / "
        f"{statistics.median(inprocess_cpu):.2f} s, "
        f"service/in-process CPU: {service_cpu / statistics.median(inprocess_cpu):.2f}"
    )
    paired = [run.total / sum(own.values()) for run, own in zip(service, inprocess, strict=True)]
    print(f"paired ratios: {', '.join(f'{ratio:.2f}' for ratio in paired)}")
    print(
        f"service/in-process latency: {statistics.median(paired):.2f} "
        f"(median of the paired ratios; ratio of the medians {service_s / inprocess_s:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument(
        "--latency",
        action="store_true",
        help="one upload at a time on an idle stack (--seconds 180) against the in-process peer",
    )
    parser.add_argument("--repeat", type=int, default=3, help="--latency: uploads measured")
    parser.add_argument("--seconds", type=float, default=None, help="default 30, --latency 180")
    parser.add_argument(
        "--storage",
        choices=("file", "s3"),
        default="file",
        help="s3: measure on the local disk, then on a moto S3 server, and compare",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    if args.latency:
        run_latency(folder, args.seconds or 180.0, args.repeat)
        return
    args.seconds = args.seconds or 30.0
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
