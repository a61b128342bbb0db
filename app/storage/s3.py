"""Storage in an S3 bucket (AWS S3, or a compatible server: MinIO, Cloudflare R2, Ceph, moto).

``STORAGE_URL=s3://bucket/prefix?endpoint_url=…&region=…&path_style=1``: every key is stored
below ``prefix/`` in ``bucket``, which must exist (it is not created here: buckets, their
permissions and lifecycle rules belong to whoever runs the deployment). The query is optional:

* ``endpoint_url`` — the server (``http://127.0.0.1:9000`` for MinIO); unset, boto3 takes
  ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, else AWS itself;
* ``region`` — unset, boto3 takes ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (or its config file);
* ``path_style=1`` — ``http://host/bucket/key`` rather than ``http://bucket.host/key``, which
  MinIO, moto and most self-hosted servers need;
* ``access_key_id`` and ``secret_access_key`` — together; better left to the variables
  ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), or an instance
  role, which boto3 reads itself, so a secret is not part of a URL that gets logged.

Only boto3 reads those ``AWS_*`` variables (this project's own settings are read in
:mod:`app.config` alone).

Saves stream: chunks are gathered into parts of :data:`PART_SIZE` and sent as a multipart
upload, one part in memory at a time; an object smaller than one part is a single
``PutObject``. A save that fails aborts its multipart upload, so no object and no hidden parts
(which a bucket bills for until aborted) are left. A server that cannot be reached raises
:class:`~app.storage.base.StorageUnavailable` (:mod:`app.outages` counts it as a server
away: the API answers 503).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path
from urllib.parse import quote

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from app.storage.base import (
    _KEY,
    CHUNK,
    ObjectInfo,
    StorageError,
    StorageUnavailable,
    Stored,
    StoredObject,
    _Hashing,
    check_key,
)
from app.storage.s3_urls import BUCKET_NAME, parse_s3_url

logger = logging.getLogger(__name__)

#: Bytes per part of a multipart upload: the memory a save holds at most (about twice this,
#: while a part is joined). S3 allows 10,000 parts, so objects up to 80 GB.
PART_SIZE = 8 << 20
#: The smallest part S3 accepts (all but the last).
MIN_PART_SIZE = 5 << 20
#: Seconds to open a connection, and to wait for any answer (or the next bytes of one).
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0
#: Attempts of one call (boto3's "standard" retry mode: throttling, 5xx and connection errors).
MAX_ATTEMPTS = 2
#: Lifetime of a presigned download URL.
PRESIGN_EXPIRES_S = 300

#: The query parameters ``STORAGE_URL`` may carry.
#: ClientError codes that mean "no such object".
_MISSING = {"404", "NoSuchKey", "NotFound"}

#: Errors of the connection itself (refused, reset, timed out, cut mid-body).
_TRANSPORT_ERRORS = (
    boto_errors.ConnectionError,  # refused, timed out, DNS (botocore's, not the builtin)
    boto_errors.HTTPClientError,  # read timeout, connection closed or cut mid-body
    boto_errors.IncompleteReadError,
)


class _Missing(StorageError):
    """No object has that key (told apart from the other refusals by :meth:`S3Storage.exists`)."""


class S3Storage:
    """Objects in ``bucket`` below ``prefix``.

    :param part_size: bytes per part of a multipart upload (at least :data:`MIN_PART_SIZE`).
    :param max_attempts: attempts per call before a connection error is raised.
    :param connect_timeout: seconds to open a connection.
    :raises StorageError: a bad bucket name, prefix or part size.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = PART_SIZE,
        max_attempts: int = MAX_ATTEMPTS,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        if not BUCKET_NAME.match(bucket):
            raise StorageError(f"invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix and not _KEY.match(prefix):
            raise StorageError(f"invalid S3 prefix {prefix!r} (names of letters, digits, ._-)")
        if part_size < MIN_PART_SIZE:
            raise StorageError(f"part size {part_size} is under S3's minimum of {MIN_PART_SIZE}")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.part_size = part_size
        config = BotoConfig(
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
            max_pool_connections=20,
            s3={"addressing_style": "path" if path_style else "auto"},
            # boto3 ≥ 1.36 sends CRC checksums S3-compatible servers refuse (boto3#4401).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)

    @classmethod
    def from_url(cls, storage_url: str, **options) -> S3Storage:
        """The storage ``s3://bucket/prefix?…`` names (``options``: constructor arguments).

        :raises StorageError: a query parameter that is unknown, repeated or malformed.
        """
        where = parse_s3_url(storage_url)
        return cls(
            where.bucket,
            where.prefix,
            endpoint_url=where.endpoint_url,
            region=where.region,
            path_style=where.path_style,
            access_key_id=where.access_key_id,
            secret_access_key=where.secret_access_key,
            **options,
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """botocore's errors as the storage's: a missing object is a :class:`StorageError`; a
        server that cannot be reached (or answers 5xx after the retries) is
        :class:`StorageUnavailable`, and so is a refusal (credentials, permissions, no bucket):
        to a client both are storage it cannot use now — a 503, not a 500 — while the message,
        for the operators' logs, says which."""
        try:
            yield
        except _TRANSPORT_ERRORS as exc:
            raise StorageUnavailable(f"S3 at {self._client.meta.endpoint_url}: {exc}") from exc
        except NoCredentialsError as exc:
            raise StorageUnavailable(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or access_key_id and secret_access_key in STORAGE_URL's query)"
            ) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _MISSING:
                raise _Missing(f"no object {key!r}") from exc
            if code == "NoSuchBucket":
                raise StorageUnavailable(f"S3 bucket {self.bucket!r} does not exist") from exc
            if status >= 500:
                raise StorageUnavailable(f"S3 answered {status} {code}: {exc}") from exc
            raise StorageUnavailable(
                f"S3 refused {key!r}: {code} {error.get('Message', '')}"
            ) from exc

    def save(self, key: str, chunks: Iterable[bytes]) -> Stored:
        name = self._name(key)
        hashing = _Hashing(chunks)
        parts = _parts(hashing, self.part_size)
        first = next(parts, b"")
        # Bodies are streams: botocore would join a ``bytes`` body to the request's head (a
        # copy of the part); a stream is sent from the part's own buffer.
        if len(first) < self.part_size:  # the whole object: no multipart upload for it
            with self._errors(key):
                self._client.put_object(Bucket=self.bucket, Key=name, Body=io.BytesIO(first))
            return Stored(key, hashing.size, hashing.sha256)
        parts = _prepend(first, parts)
        del first  # held by ``parts`` only until it is sent
        with self._errors(key):
            started = self._client.create_multipart_upload(Bucket=self.bucket, Key=name)
        upload_id = started["UploadId"]
        try:
            done: list[dict] = []
            # Not ``enumerate``: its cached result tuple would keep each part alive while the
            # next one is gathered (three parts in memory rather than two).
            while (part := next(parts, None)) is not None:
                number = len(done) + 1
                with self._errors(key):
                    answer = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=io.BytesIO(part),
                    )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
                del part  # its bytes go before the next part's are gathered
            with self._errors(key):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": done},
                )
        except BaseException:
            self._abort(name, upload_id)
            raise
        return Stored(key, hashing.size, hashing.sha256)

    def _abort(self, name: str, upload_id: str) -> None:
        """Drop an unfinished upload's parts; if even that fails, a bucket lifecycle rule
        (``AbortIncompleteMultipartUpload``) is what removes them."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except (BotoCoreError, ClientError):
            logger.warning("could not abort the multipart upload of %s", name, exc_info=True)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """The object downloaded (streamed) to a temporary file, removed afterwards."""
        suffix = Path(check_key(key)).suffix
        with tempfile.TemporaryDirectory(prefix="phantomchain-") as folder:
            path = Path(folder) / f"object{suffix}"
            with path.open("wb") as out:
                for chunk in self.read_chunks(key):
                    out.write(chunk)
            yield path

    def read_chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes as they arrive; asked for at the first ``next()`` (which raises
        :class:`StorageError` for a missing object)."""
        return self._get(key)

    def read_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """A ranged ``GetObject``: S3 sends those bytes only."""
        if length <= 0:
            return iter(())
        return self._get(key, f"bytes={start}-{start + length - 1}")

    def _get(self, key: str, byte_range: str | None = None) -> Iterator[bytes]:
        name = self._name(key)
        ranged = {"Range": byte_range} if byte_range else {}
        with self._errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=name, **ranged)["Body"]
        try:
            chunks = body.iter_chunks(CHUNK)
            while True:
                with self._errors(key):
                    chunk = next(chunks, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            body.close()  # a reader that stops early: the connection is dropped, not drained

    def stat(self, key: str) -> ObjectInfo:
        """``HeadObject``: the size, and S3's own ``ETag`` (new with every write)."""
        name = self._name(key)
        with self._errors(key):
            head = self._client.head_object(Bucket=self.bucket, Key=name)
        return ObjectInfo(int(head["ContentLength"]), str(head.get("ETag", "")).strip('"'))

    def exists(self, key: str) -> bool:
        name = self._name(key)
        try:
            with self._errors(key):
                self._client.head_object(Bucket=self.bucket, Key=name)
        except _Missing:
            return False
        return True

    def delete(self, key: str) -> None:
        name = self._name(key)
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def list_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """The objects whose key (below this storage's prefix) starts with ``prefix``, page by
        page; names that are not keys of ours (another client's) are left out."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        with self._errors(prefix):
            for page in pages:
                for found in page.get("Contents", []):
                    key = found["Key"][len(self.prefix) :]
                    if _KEY.match(key):
                        yield StoredObject(key, found["LastModified"].astimezone(UTC))

    def presigned_url(
        self,
        key: str,
        filename: str | None = None,
        content_type: str | None = None,
        expires_s: int = PRESIGN_EXPIRES_S,
    ) -> str:
        """A URL that downloads the object for ``expires_s`` seconds with no credentials, with
        the ``Content-Type`` and the file name (``Content-Disposition``) S3 should answer.
        Made locally: no call to the server (nor a check that the object exists)."""
        params = {"Bucket": self.bucket, "Key": self._name(key)}
        if filename:
            params["ResponseContentDisposition"] = _attachment(filename)
        if content_type:
            params["ResponseContentType"] = content_type
        with self._errors(key):
            return self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_s
            )

    def close(self) -> None:
        self._client.close()


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """``first``, then ``rest`` — without keeping a reference to ``first`` once it is sent."""
    yield first
    del first
    yield from rest


def _parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``chunks`` regrouped into parts of at least ``size`` bytes (the last may be smaller)."""
    pending: list[bytes] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            part = b"".join(pending)
            pending.clear()
            held = 0
            yield part
            del part
    if pending:
        yield b"".join(pending)


def _attachment(filename: str) -> str:
    """``Content-Disposition`` for a download named ``filename`` (RFC 6266: an ASCII name for
    old clients, the exact one in ``filename*``)."""
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
