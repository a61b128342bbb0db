"""The JSON API (``/api/…``, ``/healthz``, ``/readyz``): one blueprint per concern.

Routes stand on the shared request plumbing of :mod:`app.http` (auth, errors, parameters,
streams) and on the services of :mod:`app`; they never import the pages (:mod:`app.http.web`).
"""

from __future__ import annotations

from flask import Flask

from app.http.api import batches, dead_letters, health, jobs, openapi, uploads


def install(app: Flask) -> None:
    for module in (health, uploads, batches, jobs, openapi, dead_letters):
        app.register_blueprint(module.bp)
