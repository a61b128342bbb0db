"""What ``STORAGE_URL=s3://bucket/prefix?…`` says, checked without boto3 (so the settings are
checked, with every other problem listed at once, before any S3 client is made)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from app.storage.base import _KEY, StorageError

#: The query parameters an ``s3://`` URL may carry.
QUERY = ("endpoint_url", "region", "path_style", "access_key_id", "secret_access_key")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None


def parse_s3_url(storage_url: str) -> S3Location:
    """The bucket, prefix and client settings of an ``s3://`` URL.

    :raises StorageError: every problem at once (a bad bucket or prefix, a query parameter
        unknown, repeated or malformed), the secret key never shown.
    """
    try:
        parsed = urlparse(storage_url)
    except ValueError as exc:
        raise StorageError(f"STORAGE_URL {redacted(storage_url)!r} is not a URL: {exc}") from None
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"not an s3://bucket/prefix URL: {redacted(storage_url)!r}")
    problems = []
    if "@" in parsed.netloc:
        problems.append(
            "credentials go in the query (access_key_id, secret_access_key) or the AWS "
            "variables, not before the bucket"
        )
    elif not BUCKET_NAME.match(parsed.netloc):
        problems.append(f"invalid S3 bucket name {parsed.netloc!r}")
    if parsed.fragment:
        problems.append("an s3:// URL has no #fragment")
    prefix = parsed.path.strip("/")
    if prefix and not _KEY.match(prefix):
        problems.append(f"invalid S3 prefix {prefix!r} (names of letters, digits, ._-)")
    try:
        query = parse_qs(parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query))
    except ValueError:
        query = {}
        problems.append(f"malformed query {redacted(parsed.query)!r}")
    problems += [f"unknown parameter {name!r}" for name in query if name not in QUERY]
    problems += [f"{name!r} given more than once" for name, v in query.items() if len(v) > 1]
    given = {name: values[0] for name, values in query.items() if name in QUERY}
    endpoint = given.get("endpoint_url")
    if endpoint is not None:
        try:
            target = urlparse(endpoint)
            target.port  # noqa: B018 - raises ValueError for a port that is not one
        except ValueError:
            target = urlparse("")
        if target.scheme not in ("http", "https") or not target.netloc:
            problems.append(f"endpoint_url must be http(s)://host[:port], got {endpoint!r}")
    region = given.get("region")
    if region is not None and not _REGION.match(region):
        problems.append(f"region must be a name like us-east-1, got {region!r}")
    path_style = _FLAGS.get(given.get("path_style", "0").lower())
    if path_style is None:
        problems.append(f"path_style must be 1 or 0, got {given['path_style']!r}")
    if ("access_key_id" in given) != ("secret_access_key" in given):
        problems.append("access_key_id and secret_access_key go together")
    if problems:
        raise StorageError(
            f"STORAGE_URL {redacted(storage_url)!r}: {'; '.join(problems)} "
            f"(the query accepts {', '.join(QUERY)})"
        )
    return S3Location(
        parsed.netloc,
        prefix,
        endpoint,
        region,
        bool(path_style),
        given.get("access_key_id"),
        given.get("secret_access_key"),
    )


def redacted(storage_url: str) -> str:
    """``storage_url`` with a secret key in its query, and anything before an ``@``, hidden
    (for messages and logs)."""
    hidden = re.sub(r"(secret_access_key=)[^&#]*", r"\1***", storage_url)
    return re.sub(r"^([a-z0-9+.-]+://)[^/?#]*@", r"\1***@", hidden, flags=re.I)
