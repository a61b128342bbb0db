"""What a request works with, made once by :func:`app.http.create_app` and kept on the app:
the configuration, database sessions, storage and the broker."""

from __future__ import annotations

import threading

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.http.job_watch import JobWatch
from app.storage import Storage
from broker import NatsBroker


def config() -> Config:
    return current_app.config["PHANTOMCHAIN"]


def sessions() -> sessionmaker[Session]:
    return current_app.extensions["sessions"]


def storage() -> Storage:
    return current_app.extensions["storage"]


def broker() -> NatsBroker:
    return current_app.extensions["broker"]


_watch_lock = threading.Lock()


def job_watch() -> JobWatch:
    """The process's :class:`JobWatch`, made by its first event stream."""
    extensions = current_app.extensions
    with _watch_lock:
        if "job_watch" not in extensions:
            extensions["job_watch"] = JobWatch(config().database_url)
        return extensions["job_watch"]
