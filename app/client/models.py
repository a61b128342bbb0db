"""What the API answers, as frozen dataclasses: the fields a sender uses, typed as the JSON has
them (a value the server may leave out or send as null is ``None``), and the whole answer in
``raw`` for everything else (an analysis holds dozens of figures and checks: ``raw`` has them
all, as the API documents them in ``docs/api.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A job in one of these statuses has ended and will not change by itself.
ENDED = frozenset({"done", "failed", "canceled"})


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class JobEvent:
    """One line of a job's log (``GET /api/jobs/{id}`` ``events``, or the event stream)."""

    id: int
    at: str
    stage: str | None
    level: str
    message: str
    #: The job's percent done when the event stream sent it (None in a job's ``events``).
    progress: int | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobEvent:
        progress = body.get("progress")
        return cls(
            int(body["id"]),
            str(body.get("at", "")),
            body.get("stage"),
            str(body.get("level", "info")),
            str(body.get("message", "")),
            int(progress) if isinstance(progress, int | float) else None,
        )


@dataclass(frozen=True)
class Job:
    """A job: ``status`` is ``queued``, ``running``, ``done``, ``failed`` or ``canceled``;
    ``error`` is the sentence saying why a job failed."""

    id: str
    upload_id: str
    status: str
    stage: str | None
    progress: int
    error: str | None
    formats: list[str]
    created_at: str | None
    finished_at: str | None
    events: list[JobEvent] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Job:
        return cls(
            id=str(body["id"]),
            upload_id=str(body["upload_id"]),
            status=str(body["status"]),
            stage=body.get("stage"),
            progress=int(body.get("progress") or 0),
            error=body.get("error"),
            formats=list(body.get("formats") or []),
            created_at=body.get("created_at"),
            finished_at=body.get("finished_at"),
            events=[JobEvent.from_json(e) for e in body.get("events") or []],
            raw=body,
        )


@dataclass(frozen=True)
class Accepted:
    """An upload the server kept (202), and the job it queued."""

    upload_id: str
    job_id: str
    status: str
    links: dict[str, str]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Accepted:
        return cls(
            str(body["upload_id"]), str(body["job_id"]), str(body["status"]), body.get("links", {})
        )


@dataclass(frozen=True)
class Upload:
    """An upload's metadata and audio properties (None until the transcode has probed them)."""

    id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: str
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    codec: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Upload:
        return cls(
            id=str(body["id"]),
            filename=str(body["filename"]),
            content_type=str(body.get("content_type", "")),
            size_bytes=int(body.get("size_bytes") or 0),
            sha256=str(body.get("sha256", "")),
            created_at=str(body.get("created_at", "")),
            duration_s=_float(body.get("duration_s")),
            sample_rate=body.get("sample_rate"),
            channels=body.get("channels"),
            codec=body.get("codec"),
            raw=body,
        )


@dataclass(frozen=True)
class Output:
    """A transcode the job made: where to download it, and its size."""

    format: str
    url: str
    size_bytes: int
    bitrate: int | None


@dataclass(frozen=True)
class Analysis:
    """The figures of a finished job. A figure that could not be measured is None, and its
    ``*_reason`` in ``raw`` says why."""

    upload_id: str
    integrated_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    bpm: float | None
    key: str | None  # e.g. "A minor"
    camelot: str | None  # e.g. "8A"
    outputs: dict[str, Output]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Analysis:
        outputs = {
            name: Output(name, str(o["url"]), int(o.get("size_bytes") or 0), o.get("bitrate"))
            for name, o in (body.get("outputs") or {}).items()
        }
        return cls(
            upload_id=str(body["upload_id"]),
            integrated_lufs=_float(body.get("integrated_lufs")),
            loudness_range_lu=_float(body.get("loudness_range_lu")),
            true_peak_dbtp=_float(body.get("true_peak_dbtp")),
            bpm=_float(body.get("bpm")),
            key=body.get("key"),
            camelot=body.get("camelot"),
            outputs=outputs,
            raw=body,
        )


@dataclass(frozen=True)
class BatchMember:
    """One job of a batch."""

    upload_id: str
    job_id: str
    status: str
    filename: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Batch:
    """A batch: its jobs in the order the files were sent, and its overall ``status``."""

    batch_id: str
    status: str
    jobs: list[BatchMember]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Batch:
        members = [
            BatchMember(
                str(j["upload_id"]),
                str(j["job_id"]),
                str(j["status"]),
                j.get("filename"),
                j.get("error"),
            )
            for j in body.get("jobs") or []
        ]
        return cls(str(body["batch_id"]), str(body["status"]), members, body)


@dataclass(frozen=True)
class Downloaded:
    """A file written by :meth:`app.client.Client.download`: ``resumed_from`` bytes were
    already on disk from an earlier, broken download and kept (0: downloaded whole)."""

    path: str
    size: int
    resumed_from: int
