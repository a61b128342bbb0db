"""Logs: one JSON object per line (``LOG_FORMAT=json``, the default) or readable text
(``LOG_FORMAT=text``, what ``make run`` uses), at ``LOG_LEVEL``.

Every process installs one handler on the root logger (:func:`configure_logging`); libraries'
loggers (waitress's, dramatiq's) reach it by propagation, so their lines have our format too.

Each record carries the context it was logged in — ``job_id``, ``upload_id``, ``stage``,
``request_id`` — set with :func:`log_context` by the web request or the task that is running,
so a job can be followed across the API and every worker with one ``grep``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

#: Fields a record may carry from its context, in the order they are printed.
CONTEXT_FIELDS = ("request_id", "job_id", "upload_id", "stage", "actor", "message_id")

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "phantomchain_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields to every record logged inside the block (by this thread or task)."""
    token = _context.set({**(_context.get() or {}), **{k: str(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str | None) -> None:
    """Add fields to the current context until it ends (e.g. once a request knows its job)."""
    _context.set({**(_context.get() or {}), **{k: str(v) for k, v in fields.items() if v}})


def reset_context(**fields: str | None) -> None:
    """Start a fresh context (a new request on a reused thread must not inherit the last one's)."""
    _context.set({k: str(v) for k, v in fields.items() if v})


class ContextFilter(logging.Filter):
    """Copies the current context onto each record (``record.job_id`` …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <context>, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        for key, value in getattr(record, "fields", {}).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: message [job_id=… stage=…]`` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if getattr(record, key, None)
        )
        return f"{line}  [{context}]" if context else line


def make_formatter(log_format: str) -> logging.Formatter:
    return TextFormatter() if log_format == "text" else JsonFormatter()


def configure_logging(level: str = "INFO", log_format: str = "json", stream=None) -> None:
    """Route every logger through one handler on the root logger with our formatter.

    Idempotent: a second call replaces the handler it installed the first time.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "phantomchain", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.phantomchain = True  # type: ignore[attr-defined]
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries stay at warnings unless asked for debug.
    for name in ("nats", "asyncio", "urllib3", "PIL"):
        logging.getLogger(name).setLevel(level if level == "DEBUG" else "WARNING")
