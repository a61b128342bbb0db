"""Headers every answer carries so a browser cannot be talked into misreading it.

``X-Content-Type-Options: nosniff`` everywhere: a stored upload served as ``audio/mpeg`` is never
run as a script or page. JSON, downloads and errors also get a Content-Security-Policy that
allows nothing (``sandbox`` included): opened directly in a browser, a response can load, run
or frame nothing. HTML pages, when there are any, set their own policy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, current_app

from app.http import current
from app.storage import StorageUnavailable

#: The policy of everything that is not an HTML page.
LOCKED_DOWN = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"
)


def install(app: Flask) -> None:
    app.after_request(_secure)


#: The pages' policy: their own scripts, styles, images and audio, nothing inline, no frames.
PAGES = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def _secure(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    policy = PAGES if response.mimetype in ("text/html", "text/css", "text/javascript") else None
    if policy is not None and (bucket := _bucket()):
        policy = policy.replace("media-src 'self'", f"media-src 'self'{bucket}")
        policy = policy.replace("connect-src 'self'", f"connect-src 'self'{bucket}")
    response.headers.setdefault("Content-Security-Policy", policy or LOCKED_DOWN)
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype in ("text/html", "application/json"):  # a tenant's data: never kept
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _bucket() -> str:
    """With ``S3_PRESIGN=1``, the origin of the bucket's presigned URLs (`` https://…``), where
    the result page's player is redirected to play (and seek) an output, and its script to
    fetch the waveform's peaks; else nothing."""
    if "media_origin" not in current_app.extensions:
        origin = ""
        if current.config().s3_presign:
            try:
                url = current.storage().presigned_url("outputs/origin")  # made here: no request
            except StorageUnavailable:  # no credentials: no download works yet; ask again later
                return ""
            if url:
                parts = urlsplit(url)
                origin = f" {parts.scheme}://{parts.netloc}"
        current_app.extensions["media_origin"] = origin
    return current_app.extensions["media_origin"]
