"""gunicorn settings for the API (``gunicorn -c python:app.gunicorn_conf``).

Loaded by the gunicorn master before anything else: it picks the metrics directory (fresh for
this master; the workers it forks count into it, and dead ones are marked so their gauges
vanish), puts gunicorn's own messages into our log format, and gives requests in flight
``GRACEFUL_TIMEOUT`` seconds (default 30) to finish when the master is told to stop.
"""

from __future__ import annotations

import os

from app.config import logging_from_env
from app.logs import gunicorn_logconfig
from app.metrics import mark_process_dead, use_multiprocess_dir

use_multiprocess_dir("web", os.getpid())

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "30"))
logconfig_dict = gunicorn_logconfig(*logging_from_env())


def child_exit(server, worker) -> None:
    mark_process_dead(worker.pid)
