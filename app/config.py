"""Configuration: every setting from the environment, read and checked in one place.

``Config.from_env()`` fails at start with one readable message per bad value
(:class:`ConfigError`), never with a stack trace deep inside a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")


class ConfigError(ValueError):
    """One or more settings are missing or malformed; the message lists them all."""


@dataclass(frozen=True)
class Config:
    database_url: str
    nats_url: str = "nats://127.0.0.1:4222"
    storage_url: str = "file://./var/storage"
    api_tokens: frozenset[str] = field(default_factory=frozenset)
    admin_token: str | None = None
    max_upload_mb: int = 500
    log_level: str = "INFO"
    log_format: str = "json"
    worker_metrics_port: int = 9191
    worker_processes: int = 2
    worker_threads: int = 1

    @property
    def open_access(self) -> bool:
        """No tokens configured: every route is open (dev mode, said on start)."""
        return not self.api_tokens and not self.admin_token

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        problems: list[str] = []

        def text(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        def number(name: str, default: int, low: int, high: int) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be a whole number, got {raw!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high}, got {value}")
            return value

        database_url = text("DATABASE_URL")
        if database_url is None:
            problems.append("DATABASE_URL is not set (e.g. postgresql://user:pass@host/db)")
        else:
            database_url = normalise_database_url(database_url, problems)
        nats_url = text("NATS_URL", cls.nats_url)
        try:
            nats_url_from_env({"NATS_URL": nats_url})
        except ConfigError as error:
            problems.append(str(error))
        storage_url = text("STORAGE_URL", cls.storage_url)
        if urlparse(storage_url).scheme not in ("file", "nats"):
            problems.append(
                f"STORAGE_URL must be file:///path or nats://host:port/bucket, got {storage_url!r}"
            )
        tokens = frozenset(t.strip() for t in (text("API_TOKENS") or "").split(",") if t.strip())
        log_level, log_format = cls.log_level, cls.log_format
        try:
            log_level, log_format = logging_from_env(env)
        except ConfigError as error:
            problems.extend(str(error).split("; "))
        worker_metrics_port = cls.worker_metrics_port
        try:
            worker_metrics_port = worker_metrics_port_from_env(env)
        except ConfigError as error:
            problems.append(str(error))
        config = cls(
            database_url=database_url or "",
            nats_url=nats_url,
            storage_url=storage_url,
            api_tokens=tokens,
            admin_token=text("ADMIN_TOKEN"),
            max_upload_mb=number("MAX_UPLOAD_MB", cls.max_upload_mb, 1, 100_000),
            log_level=log_level,
            log_format=log_format,
            worker_metrics_port=worker_metrics_port,
            worker_processes=number("WORKER_PROCESSES", cls.worker_processes, 1, 256),
            worker_threads=number("WORKER_THREADS", cls.worker_threads, 1, 256),
        )
        if problems:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
        return config


def nats_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """Just ``NATS_URL`` (checked), for processes that need nothing else at import time (the
    Dramatiq broker is declared before any actor, before the rest is read)."""
    env = os.environ if env is None else env
    url = env.get("NATS_URL", "").strip() or Config.nats_url
    for part in url.split(","):
        if urlparse(part.strip()).scheme not in ("nats", "tls", "ws", "wss"):
            raise ConfigError(f"NATS_URL must be nats://host:port, got {part.strip()!r}")
    return url


def logging_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(LOG_LEVEL, LOG_FORMAT)`` (checked), for processes that set up logging before, or
    without, reading the rest: gunicorn's master, dramatiq's worker and fork processes."""
    env = os.environ if env is None else env
    level = (env.get("LOG_LEVEL", "").strip() or Config.log_level).upper()
    log_format = (env.get("LOG_FORMAT", "").strip() or Config.log_format).lower()
    problems = []
    if level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if log_format not in LOG_FORMATS:
        problems.append(f"LOG_FORMAT must be json or text, got {log_format!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    return level, log_format


def worker_metrics_port_from_env(env: Mapping[str, str] | None = None) -> int:
    """``WORKER_METRICS_PORT`` (checked; 0 turns the workers' metrics server off)."""
    env = os.environ if env is None else env
    raw = env.get("WORKER_METRICS_PORT", "").strip()
    if not raw:
        return Config.worker_metrics_port
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(f"WORKER_METRICS_PORT must be a port number (0 = off), got {raw!r}")
    return int(raw)


def normalise_database_url(url: str, problems: list[str]) -> str:
    """Accept ``postgres://`` and ``postgresql://`` (Heroku-style); use the psycopg 3 driver."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        problems.append(f"DATABASE_URL must be a postgres:// or postgresql:// URL, got {url!r}")
        return url
    return f"postgresql+psycopg://{rest}"


def storage_path(storage_url: str) -> Path:
    """The directory of a ``file://`` storage URL (``file://./var`` is relative)."""
    parsed = urlparse(storage_url)
    return Path(parsed.netloc + parsed.path) if parsed.netloc else Path(parsed.path)
