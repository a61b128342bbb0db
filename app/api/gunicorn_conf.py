"""gunicorn settings for the API (``gunicorn -c python:app.api.gunicorn_conf``).

Loaded by the gunicorn master before anything else: it checks the whole configuration (a bad
setting stops the start with the one message that lists them all, before any worker boots),
binds ``0.0.0.0:PORT`` with ``WEB_CONCURRENCY`` gthread workers of ``WEB_THREADS`` threads,
picks the metrics directory (fresh for this master; the workers it forks count into it, and
dead ones are marked so their gauges vanish), puts gunicorn's own messages into our log format,
and gives requests in flight ``GRACEFUL_TIMEOUT`` seconds to finish when told to stop.
"""

from __future__ import annotations

import os

from app.config import Config, ConfigError
from app.logs import gunicorn_logconfig
from app.metrics import mark_process_dead, use_multiprocess_dir

# Not named ``config``: gunicorn takes every module-level name it knows as a setting.
try:
    _config = Config.from_env()
except ConfigError as error:
    raise SystemExit(str(error)) from None  # gunicorn would print a traceback around it

use_multiprocess_dir(_config.metrics_dir, "web", os.getpid())

bind = f"0.0.0.0:{_config.port}"
workers = _config.web_concurrency
worker_class = "gthread"
threads = _config.web_threads
graceful_timeout = _config.graceful_timeout
logconfig_dict = gunicorn_logconfig(_config.log_level, _config.log_format)


def child_exit(server, worker) -> None:
    mark_process_dead(worker.pid)
