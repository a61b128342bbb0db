"""The HTTP application: :func:`create_app`, and the request plumbing its two sides share.

:func:`create_app` builds one Flask app from a :class:`app.config.Config` (the environment's,
unless given): it makes what every request needs once — settings, database sessions, storage,
the broker, reached through :mod:`app.http.current` — and installs the JSON API
(:mod:`app.http.api`) and the pages (:mod:`app.http.web`), two sibling sets of blueprints that never
import each other. What both use lives beside this module: who is calling (:mod:`~app.http.auth`),
errors as JSON (:mod:`~app.http.errors`), checked parameters (:mod:`~app.http.params`), security
headers, request logs and metrics, bounded event streams, and byte ranges of downloads
(:mod:`~app.http.ranges`).

``python -m app.server`` (the Procfile's web line) serves it; tests and tools call
:func:`create_app` with their own configuration.
"""

from __future__ import annotations

import logging

from flask import Flask

from app.config import Config
from app.db import make_sessions
from app.http import api, errors, headers, observability, web
from app.http.params import IdConverter
from app.queue import make_broker
from app.storage import storage_of

logger = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> Flask:
    """The API, configured from the environment unless ``config`` is given."""
    config = config or Config.from_env()
    app = Flask(__name__, static_folder=None)  # no /static route nobody serves
    app.url_map.converters["id"] = IdConverter
    app.config["PHANTOMCHAIN"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_mb * 1024 * 1024
    app.extensions["sessions"] = make_sessions(config.database_url)
    app.extensions["storage"] = storage_of(config)
    app.extensions["broker"] = make_broker(
        config.nats_url,
        config.nats_namespace,
        replicas=config.nats_replicas,
        sign_in=config.nats_sign_in.for_broker(),
    )
    if config.open_access:
        logger.warning(
            "no API_TOKENS or ADMIN_TOKEN set: the API is open to anyone until a token is made "
            "with `phantomchain tokens create`"
        )
    errors.register(app)
    api.install(app)
    observability.install(app)
    headers.install(app)
    web.install(app)
    return app
