"""Small helpers shared by the tests."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from app.queue import make_broker
from broker import NatsBroker

#: The project's root: where the Procfile, alembic.ini and deploy/ are.
ROOT = Path(__file__).resolve().parents[1]


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; return its last value.

    Deadlines here are generous bounds for a busy machine, never assertions about speed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def stop_all(processes, timeout: float = 30.0) -> None:
    """SIGTERM every process, then wait for each (SIGKILL the ones still there at ``timeout``)."""
    import signal
    import subprocess

    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def song_flac(folder, bpm: float, tonic: str, mode: str, *, seconds: float, rate: int,
              seed: int) -> bytes:  # fmt: skip
    """A synthesized song of known tempo and key, as FLAC bytes."""
    from tests.unit.audio.music import synthesize_track
    from tests.unit.audio.signals import write_audio

    track = synthesize_track(bpm, tonic, mode, seconds=seconds, sample_rate=rate, seed=seed)
    path = write_audio(folder / "song.flac", track.samples, rate, "flac")
    return path.read_bytes()


def reference_lufs(samples, rate: int) -> float:
    """Integrated loudness of ``samples`` (channels, frames) by pyloudnorm: an implementation
    of BS.1770 independent of ours, the truth the service's figures are held to."""
    import pyloudnorm

    return float(pyloudnorm.Meter(rate).integrated_loudness(samples.T))


#: The namespace of every service stream this test session makes — never ``phantomchain``: a
#: ``TEST_NATS_URL`` may name a server where a real deployment keeps its queues.
SERVICE_NAMESPACE = f"test-{uuid.uuid4().hex[:10]}"
_service_brokers: dict[str, NatsBroker] = {}


def service_broker(nats_url: str) -> NatsBroker:
    """The service's broker on the session's namespace at ``nats_url``, one per URL."""
    if nats_url not in _service_brokers:
        _service_brokers[nats_url] = make_broker(nats_url, SERVICE_NAMESPACE)
    return _service_brokers[nats_url]


def service_settings(database_url: str, nats_url: str, folder: Path, **env: str) -> dict:
    """The settings of an API or worker under test: its database, the session's namespace on
    ``nats_url``, files under ``folder/store``; then ``env``."""
    return {
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": SERVICE_NAMESPACE,
        "STORAGE_URL": f"file://{folder}/store",
        **env,
    }


def remove_service_streams() -> None:
    """Delete the session's service streams from every server the session used."""
    for broker in _service_brokers.values():
        with contextlib.suppress(Exception):  # a server the suite already stopped
            broker.delete_streams()
        broker.close()
    _service_brokers.clear()


def stream_info(servers: list[str], name: str):
    """What the cluster says of stream ``name``, asked through ``servers``; None while it
    cannot answer (an election under way)."""

    import asyncio

    import nats

    async def read():
        nc = await nats.connect(servers=servers, connect_timeout=2, max_reconnect_attempts=1)
        try:
            return await nc.jetstream(timeout=1.0).stream_info(name)
        finally:
            await nc.close()

    try:
        return asyncio.run(read())
    except Exception:
        return None
