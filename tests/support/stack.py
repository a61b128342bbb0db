"""An API under test (Flask's test client) with its settings, pipeline workers started when a
test asks (so that it can break an upload before any worker reads it), the ``phantomchain``
console script run as an operator runs it, and dead letters written as the consumer writes
them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.config import Config
from app.models import Upload
from broker import NatsBroker
from broker.dead_letters import encode_record
from tests.support.paths import ROOT

PHANTOMCHAIN = Path(sys.executable).parent / "phantomchain"


@dataclass
class Stack:
    """The API (test client), its settings, and workers started on demand."""

    settings: dict[str, str]
    client: FlaskClient
    store: Path
    log_dir: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_workers(self) -> None:
        with (self.log_dir / f"workers{len(self.workers)}.log").open("wb") as log:
            self.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dramatiq",
                        "tasks.pipeline",
                        "--processes",
                        "1",
                        "--threads",
                        "2",
                    ],
                    env=self.env(WORKER_THREADS="2"),  # as the Procfile passes --threads
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    start_new_session=True,  # killed as a group at the end
                )
            )

    @property
    def broker(self) -> NatsBroker:
        """The API's broker: the session's own namespace on the test NATS."""
        return self.client.application.extensions["broker"]

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.settings, "PYTHONPATH": str(ROOT), **extra}

    def cli(self, *args: str, input: str | None = None, env: dict | None = None):
        """``phantomchain ARGS`` as an operator runs it; returns the finished process."""
        return subprocess.run(
            [str(PHANTOMCHAIN), *args],
            env=env or self.env(),
            cwd=ROOT,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def job(self, job_id: str) -> dict:
        return self.client.get(f"/api/jobs/{job_id}").json


def bury(
    broker: NatsBroker, queue: str, actor: str, args: list, reason: str = "RuntimeError: boom"
) -> str:
    """A dead letter as the consumer writes one (same record, same stream); returns its id."""
    message = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=tuple(args), kwargs={}, options={"max_retries": 3}
    )
    record = encode_record(
        queue_name=queue,
        reason=reason,
        deliveries=4,
        message=message,
        traceback=f"Traceback (most recent call last):\n  ...\n{reason}\n",
    )

    async def publish() -> str:
        js = await broker.connection.jetstream()
        await broker.topology.ensure_streams(js)
        ack = await js.publish(
            broker.topology.dead_letter_subject(queue),
            record,
            stream=broker.topology.dead_letter_stream,
        )
        return str(ack.seq)

    return broker.connection.run(publish, timeout=10)


def storage_key(stack: Stack, upload_id: str) -> str:
    engine = create_engine(Config.from_env(stack.settings).database_url)
    try:
        with Session(engine) as session:
            return session.scalar(select(Upload.storage_key).where(Upload.id == upload_id))
    finally:
        engine.dispose()
