"""The Python client of PhantomChain's HTTP API, for the machines that send the audio.

    from app.client import Client

    with Client.from_env() as client:          # PHANTOMCHAIN_URL, PHANTOMCHAIN_TOKEN
        accepted = client.upload("song.flac", formats=["mp3", "opus"], normalize="spotify")
        job = client.follow(accepted.job_id, on_event=print)
        if job.status == "done":
            print(client.analysis(accepted.upload_id).integrated_lufs)
            client.download(accepted.upload_id, "mp3", "out/")

It needs only the server's URL and a token, and imports nothing of the server (no Flask,
SQLAlchemy, numpy, audio stack or NATS client): urllib3 is its one HTTP library, one
connection pool per :class:`Client`. The manual is ``docs/client.md``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import urllib3

from app.client.downloads import Download, DownloadProgress, filename_of
from app.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    FileExists,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PhantomChainError,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    WaitTimeout,
)
from app.client.follow import Follower, Update
from app.client.http import Timeouts, Transport, json_of, path_of, read_model
from app.client.models import (
    Accepted,
    Analysis,
    Batch,
    BatchMember,
    Downloaded,
    Job,
    JobEvent,
    Output,
    Upload,
)
from app.client.multipart import FilePart, FileUnreadable, MultipartBody, Progress
from app.client.retries import RetryPolicy

__all__ = [
    "Accepted",
    "Analysis",
    "ApiError",
    "BadRequest",
    "Batch",
    "BatchMember",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Downloaded",
    "FileExists",
    "FileUnreadable",
    "Forbidden",
    "Job",
    "JobEvent",
    "NotFound",
    "NotReady",
    "Output",
    "PayloadTooLarge",
    "PhantomChainError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Timeouts",
    "Unauthorized",
    "Upload",
    "WaitTimeout",
]

URL_VARIABLE = "PHANTOMCHAIN_URL"
TOKEN_VARIABLE = "PHANTOMCHAIN_TOKEN"


class NotReady(Conflict):
    """The analysis asked for is not made yet (the server answered 202: the job runs)."""


def _form(
    formats: Sequence[str] | str | None,
    normalize: str | float | None,
    true_peak: float | None,
    bpm_range: tuple[float, float] | str | None,
    priority: str | None,
    callback_url: str | None,
) -> list[tuple[str, str]]:
    """An upload's options as the API's form fields (only those given)."""
    fields: list[tuple[str, str]] = []
    if formats:
        fields.append(("formats", formats if isinstance(formats, str) else ",".join(formats)))
    if normalize is not None:
        fields.append(("normalize", str(normalize)))
    if true_peak is not None:
        fields.append(("true_peak", str(true_peak)))
    if bpm_range is not None:
        text = bpm_range if isinstance(bpm_range, str) else f"{bpm_range[0]:g}-{bpm_range[1]:g}"
        fields.append(("bpm_range", text))
    if priority is not None:
        fields.append(("priority", priority))
    if callback_url is not None:
        fields.append(("callback_url", callback_url))
    return fields


class Client:
    """One PhantomChain server, one token.

    :param url: the server's address, e.g. ``https://audio.example.com``.
    :param token: a tenant's token (``Authorization: Bearer``); None for a server running open.
    :param timeout: seconds to connect and for each read — a number for both, or
        :class:`Timeouts` (default: 10 s to connect, 60 s for each read).
    :param retry: how calls are retried (default: a :class:`RetryPolicy` as it comes): 429
        and 503 after their ``Retry-After``, connection failures of safe calls with a backoff.
    :param poll_interval_s: how often :meth:`follow` looks at a job while its event stream
        cannot be had.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll_interval_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if "@" in urlsplit(url if "://" in url else f"//{url}").netloc:
            raise PhantomChainError(  # not quoted: it holds a password
                "the URL must not hold a user or password (they would not be sent, only shown "
                "in errors): give the tenant's token as PHANTOMCHAIN_TOKEN (or --token)"
            )
        if not url.startswith(("http://", "https://")):
            raise PhantomChainError(f"the URL must start with http:// or https://, not {url!r}")
        if timeout is None:
            timeouts = Timeouts()
        elif isinstance(timeout, Timeouts):
            timeouts = timeout
        else:
            timeouts = Timeouts(timeout, timeout)
        retry = retry or RetryPolicy()
        self.url = url
        self.poll_interval_s = poll_interval_s
        self._http = Transport(url, token, timeouts=timeouts, retry=retry, sleep=sleep)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll_interval_s: float = 1.0,
    ) -> Client:
        """A client of ``PHANTOMCHAIN_URL`` with ``PHANTOMCHAIN_TOKEN`` (from ``environ``, by
        default the process's environment; ``url`` and ``token``, when given, win); the other
        options as :class:`Client` takes them.

        :raises PhantomChainError: no URL given either way.
        """
        env = os.environ if environ is None else environ
        chosen = url or env.get(URL_VARIABLE, "").strip()
        if not chosen:
            raise PhantomChainError(
                f"set {URL_VARIABLE} to the server's address (e.g. http://127.0.0.1:8080)"
            )
        return cls(
            chosen,
            token or env.get(TOKEN_VARIABLE, "").strip() or None,
            timeout=timeout,
            retry=retry,
            poll_interval_s=poll_interval_s,
        )

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending audio ---------------------------------------------------------------------

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        formats: Sequence[str] | str | None = None,
        normalize: str | float | None = None,
        true_peak: float | None = None,
        bpm_range: tuple[float, float] | str | None = None,
        priority: str | None = None,
        callback_url: str | None = None,
        filename: str | None = None,
        idempotency_key: str | None = None,
        on_progress: Progress | None = None,
    ) -> Accepted:
        """Send one file, streamed from disk, and start its job.

        :param formats: the transcodes to make (``["mp3", "opus"]`` or ``"mp3,opus"``; the
            server's default: MP3).
        :param normalize: a platform (``"spotify"``, ``"apple"``, ``"podcast"``…) or a target in
            LUFS the transcodes are normalised to; ``true_peak`` their ceiling in dBTP.
        :param bpm_range: ``(low, high)`` the tempo is folded into (``(70, 140)``).
        :param priority: ``high``, ``normal`` or ``low`` among the tenant's work.
        :param callback_url: a webhook told of the job's end (the server needs webhooks on).
        :param idempotency_key: sent as ``Idempotency-Key`` (a new random one by default): the
            server answers a retry with this key as it did the first time, so the upload is
            retried after a dropped connection without ever being made twice.
        :param on_progress: ``(sent_bytes, total_bytes)`` of the file as it is sent.
        :raises BadRequest: not audio (``code == "not_audio"``), a bad option.
        :raises PayloadTooLarge: over the server's ``MAX_UPLOAD_MB``.
        :raises RateLimited: over the tenant's quota (``retry_after`` says when it frees).
        :raises FileUnreadable: the file cannot be read, or changed while it was being sent.
        """
        source = Path(path)
        body = MultipartBody(
            _form(formats, normalize, true_peak, bpm_range, priority, callback_url),
            [FilePart(source, filename or source.name, on_progress)],
        )
        headers = {
            "Content-Type": body.content_type,
            "Content-Length": str(body.length),
            "Idempotency-Key": idempotency_key or uuid.uuid4().hex,
        }
        response = self._http.request(
            "POST", "/api/uploads", headers=headers, body=body.chunks, idempotent=True
        )
        return read_model(Accepted.from_json, json_of(response))

    def upload_batch(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        formats: Sequence[str] | str | None = None,
        normalize: str | float | None = None,
        true_peak: float | None = None,
        bpm_range: tuple[float, float] | str | None = None,
        callback_url: str | None = None,
        on_progress: Callable[[Path, int, int], None] | None = None,
    ) -> Batch:
        """Send several files as one batch (one id, one webhook told once all have ended; all
        kept or none). The options are every job's, as :meth:`upload`'s.

        A batch takes no ``Idempotency-Key``, so it is not sent again after a connection that
        broke once its body was on the way (:class:`ConnectionFailed` is raised: look with
        :meth:`job` or the batch list before sending it again); a 429 or 503 — nothing kept —
        is retried.
        """
        files = [Path(p) for p in paths]

        def progress_of(file: Path) -> Progress | None:
            if on_progress is None:
                return None
            return lambda sent, total: on_progress(file, sent, total)

        body = MultipartBody(
            _form(formats, normalize, true_peak, bpm_range, None, callback_url),
            [FilePart(f, f.name, progress_of(f)) for f in files],
        )
        headers = {"Content-Type": body.content_type, "Content-Length": str(body.length)}
        response = self._http.request(
            "POST", "/api/batches", headers=headers, body=body.chunks, idempotent=False
        )
        return read_model(Batch.from_json, json_of(response))

    # -- looking -------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        """A job, with its events.

        :raises NotFound: no such job (or another tenant's).
        """
        return read_model(Job.from_json, self._http.get_json(path_of("api", "jobs", job_id))[1])

    def get_upload(self, upload_id: str) -> Upload:
        """An upload's metadata and audio properties."""
        body = self._http.get_json(path_of("api", "uploads", upload_id))[1]
        return read_model(Upload.from_json, body)

    def batch(self, batch_id: str) -> Batch:
        """A batch: its jobs' states in order and its overall status."""
        body = self._http.get_json(path_of("api", "batches", batch_id))[1]
        return read_model(Batch.from_json, body)

    def analysis(self, upload_id: str) -> Analysis:
        """The analysis of a finished job.

        :raises NotReady: its job is still queued or running.
        :raises Conflict: its job failed (``code == "job_failed"``, the sentence saying why) or
            was canceled (``"job_canceled"``).
        """
        status, body = self._http.get_json(
            path_of("api", "uploads", upload_id, "analysis"), accept=(202,)
        )
        if status == 202:
            raise NotReady(
                202,
                "not_ready",
                f"the job is {body.get('status')} (stage {body.get('stage')}, "
                f"{body.get('progress')} %)",
            )
        return read_model(Analysis.from_json, body)

    # -- following and stopping ---------------------------------------------------------------

    def watch(
        self, job_id: str, *, last_event_id: int = 0, timeout: float | None = None
    ) -> Iterator[Update]:
        """Each new event of a job's log as it happens (:class:`JobEvent`), then the ended
        :class:`Job` as the last item. A dropped stream resumes after the last event seen; when
        no stream can be had the job is polled; outages are waited out (``docs/client.md``).

        :param last_event_id: start after this event (0: from the first).
        :param timeout: seconds to wait at most (None: until the job ends).
        :raises WaitTimeout: ``timeout`` passed first; the job goes on on the server.
        :raises NotFound: no such job.
        """
        follower = Follower(
            self._http,
            job_id,
            last_event_id=last_event_id,
            poll_interval_s=self.poll_interval_s,
            timeout_s=timeout,
        )
        return follower.updates()

    def follow(
        self,
        job_id: str,
        on_event: Callable[[JobEvent], None] | None = None,
        *,
        timeout: float | None = None,
    ) -> Job:
        """Wait for a job to end, telling ``on_event`` of each event on the way; the ended job
        (``status`` ``done``, ``failed`` with its ``error``, or ``canceled``). As :meth:`watch`."""
        for update in self.watch(job_id, timeout=timeout):
            if isinstance(update, Job):
                return update
            if on_event is not None:
                on_event(update)
        raise ConnectionFailed(f"the events of job {job_id} ended before the job")  # unreachable

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (it ends ``canceled``; a running stage stops within
        about 2 s). A job that had already ended is left as it is and returned so.

        :raises NotFound: no such job.
        """
        try:
            self._http.request("POST", path_of("api", "jobs", job_id, "cancel"), idempotent=True)
        except Conflict as exc:
            if exc.code != "already_ended":
                raise
        return self.job(job_id)

    # -- results -------------------------------------------------------------------------------

    def download(
        self,
        upload_id: str,
        fmt: str,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: DownloadProgress | None = None,
    ) -> Downloaded:
        """Download a transcode (``fmt``: ``mp3``, ``opus``…) to ``dest``: a file path, or a
        directory (one that exists, or a path ending in ``/``, made), where it gets the name the
        server gives it (the upload's, with the format's extension). A broken download is
        resumed — now, and by a later call — from what is on disk (``Range``); the file appears
        under its name only once whole.

        :param overwrite: replace a file already there under that name. Without it nothing is
            replaced: a transcode named as its source (``song.mp3`` from ``song.mp3``) and
            downloaded beside it must not take the original's place.
        :param on_progress: ``(received_bytes, total_bytes)``.
        :raises FileExists: the file is there and ``overwrite`` is not set (nothing is
            downloaded).
        :raises NotFound: no such upload, or no output in that format.
        """
        for name in (upload_id, fmt):  # both name files here, and may come from the server
            if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
                raise PhantomChainError(f"not an upload id or format: {name!r}")
        target = Path(dest)
        into_dir = target.is_dir() or os.fspath(dest).endswith(("/", os.sep))
        if not into_dir and target.exists() and not overwrite:
            raise FileExists(str(target))
        if into_dir:
            target.mkdir(parents=True, exist_ok=True)
        part = (
            target / f".{upload_id}.{fmt}.part"
            if into_dir
            else target.with_name(target.name + ".part")
        )

        def final(response: urllib3.BaseHTTPResponse) -> Path:
            if not into_dir:
                return target
            named = target / (filename_of(response) or f"{upload_id}.{fmt}")
            if named.exists() and not overwrite:
                raise FileExists(str(named))
            return named

        path = path_of("api", "uploads", upload_id, "outputs", fmt)
        return Download(self._http, path, part, on_progress).run(final)
