"""The HTTP API: :func:`create_app` and one blueprint per concern.

``python -m app.api.server`` (the Procfile's web line) builds it from the environment;
tests and tools pass a :class:`app.config.Config`. Everything a request needs — settings,
sessions, storage, the broker — is made here once and reached through :mod:`app.api.current`.
"""

from __future__ import annotations

import logging

from flask import Flask

from app import web
from app.api import (
    batches,
    dead_letters,
    errors,
    headers,
    health,
    jobs,
    observability,
    openapi,
    uploads,
)
from app.api.params import IdConverter
from app.config import Config
from app.db import make_sessions
from app.queue import make_broker
from app.storage import open_storage

logger = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> Flask:
    """The API, configured from the environment unless ``config`` is given."""
    config = config or Config.from_env()
    app = Flask(__name__, static_folder=None)  # no /static route nobody serves
    app.url_map.converters["id"] = IdConverter
    app.config["PHANTOMCHAIN"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_mb * 1024 * 1024
    app.extensions["sessions"] = make_sessions(config.database_url)
    app.extensions["storage"] = open_storage(config.storage_url, config.nats_replicas)
    app.extensions["broker"] = make_broker(
        config.nats_url, config.nats_namespace, replicas=config.nats_replicas
    )
    if config.open_access:
        logger.warning(
            "no API_TOKENS or ADMIN_TOKEN set: the API is open to anyone until a token is made "
            "with `phantomchain tokens create`"
        )
    errors.register(app)
    for module in (health, uploads, batches, jobs, openapi, dead_letters):
        app.register_blueprint(module.bp)
    observability.install(app)
    headers.install(app)
    web.install(app)
    return app
