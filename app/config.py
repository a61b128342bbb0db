"""Configuration: every setting, for every process, read from the environment and checked here.

This is the only module that reads the environment. ``Config.from_env()`` fails at start with
one message that lists every bad value (:class:`ConfigError`), never with a stack trace deep
inside a request. The web line (waitress), the workers, the CLI, ``phantomchain dev`` and the
migrations all start from it.

``make run`` (``phantomchain dev``) leaves the running stack's addresses in ``var/dev.env``;
the CLI reads that file for the variables that are not set (:func:`cli_environment`), so a
second terminal reaches the stack with no settings of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from app.nats_sign_in import SignInSettings, check_settings
from app.storage.base import StorageError
from app.storage.s3_urls import parse_s3_url, redacted

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
#: Where ``phantomchain dev`` leaves the running stack's settings for the CLI (relative to the
#: directory it runs in, like its ``var`` folder).
DEV_ENV_FILE = Path("var") / "dev.env"
#: The settings ``dev.env`` carries: what the CLI needs to reach the stack.
DEV_ENV_NAMES = (
    "DATABASE_URL",
    "NATS_URL",
    "NATS_NAMESPACE",
    "STORAGE_URL",
    "WEBHOOK_ALLOW_PRIVATE",
)
#: What JetStream accepts in stream and consumer names (as :class:`broker.topology.Topology`).
_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ConfigError(ValueError):
    """One or more settings are missing or malformed; the message lists them all."""


def _default_metrics_dir() -> Path:
    return Path(tempfile.gettempdir()) / "phantomchain-metrics"


@dataclass(frozen=True)
class Config:
    database_url: str
    nats_url: str = "nats://127.0.0.1:4222"
    nats_namespace: str = "phantomchain"
    nats_replicas: int = 1
    #: ``NATS_CREDS``, ``NATS_NKEY_SEED(_FILE)``, ``NATS_TLS_*``: how every process signs in
    #: to NATS beyond what ``NATS_URL`` holds (:mod:`app.nats_sign_in`).
    nats_sign_in: SignInSettings = field(default_factory=SignInSettings)
    storage_url: str = "file://./var/storage"
    #: Bearer token -> tenant, from ``API_TOKENS`` (``tenant:token`` or a bare token).
    api_tokens: dict[str, str] = field(default_factory=dict)
    admin_token: str | None = None
    #: Signs the web pages' session cookies; unset: a random key per process (sessions end
    #: when the API restarts, and several API processes do not share them).
    secret_key: str | None = None
    max_upload_mb: int = 500
    uploads_per_hour: int = 1000
    storage_quota_mb: int = 50_000
    max_duration_s: int = 4 * 3600
    max_output_mb: int = 4096
    decode_timeout_s: int = 600
    stage_time_limit_s: int = 1800
    log_level: str = "INFO"
    log_format: str = "json"
    metrics_dir: Path = field(default_factory=_default_metrics_dir)
    worker_metrics_port: int = 9191
    worker_processes: int = 2
    worker_threads: int = 1
    #: ``auto``: each encoder on a thread of its own when the workers leave a core spare
    #: (see :attr:`encode_on_own_thread`); ``on``, ``off``.
    encode_thread: str = "auto"
    #: Most pipeline stages of one tenant running at once, across all workers; 0: no cap.
    tenant_max_running: int = 0
    port: int = 8080
    #: The address of the reverse proxy whose ``X-Forwarded-Proto``/``-For`` are believed
    #: (``*``: any); unset, those headers are ignored.
    trusted_proxy: str | None = None
    web_threads: int = 32
    web_connection_limit: int = 1000
    read_timeout_s: int = 30
    metrics_port: int = 9190
    #: Tenants named in ``phantomchain_waiting_jobs``; the others add up under ``@other``.
    metrics_top_tenants: int = 10
    event_stream_max_s: int = 300
    event_streams_per_tenant: int = 8
    graceful_timeout: int = 30
    stuck_job_after_s: int = 120
    sweep_interval_s: int = 60
    orphan_after_s: int = 3600
    #: Answer downloads from S3 storage with a 302 to a presigned URL (``S3_PRESIGN=1``)
    #: rather than streaming them through the API.
    s3_presign: bool = False
    #: Signs webhooks (Standard Webhooks: ``whsec_`` + base64); unset: no webhooks are sent,
    #: and an upload asking for one is refused.
    webhook_secret: str | None = None
    #: Let webhooks reach loopback, private and link-local addresses (``make run``, tests).
    webhook_allow_private: bool = False
    #: Seconds a webhook receiver has to answer one attempt.
    webhook_timeout_s: int = 10
    #: Threads of the webhooks worker (the Procfile's ``webhooks`` line): deliveries at once.
    webhook_threads: int = 8
    #: Where the webhooks worker serves its metrics (0: nowhere).
    webhook_metrics_port: int = 9192

    @property
    def encode_on_own_thread(self) -> bool:
        """Whether a worker's encoders run on threads of their own. ``auto``: when
        ``WORKER_PROCESSES × WORKER_THREADS`` leave one of this machine's cores spare — where
        every core is taken, a second thread per job only adds switching (more CPU per job:
        BENCHMARKS.md, "Faster masters")."""
        if self.encode_thread != "auto":
            return self.encode_thread == "on"
        from audio.work_thread import spare_cores

        return spare_cores(self.worker_processes * self.worker_threads)

    @property
    def nats_servers(self) -> list[str]:
        """``NATS_URL``'s servers."""
        return [part.strip() for part in self.nats_url.split(",") if part.strip()]

    @property
    def open_access(self) -> bool:
        """No tokens configured: every route is open (dev mode, said on start)."""
        return not self.api_tokens and not self.admin_token

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Every setting from ``env`` (default: this process's environment), checked.

        :raises ConfigError: listing every setting that is missing or malformed.
        """
        env = os.environ if env is None else env
        problems: list[str] = []

        def text(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        def number(name: str, default: int, low: int, high: int, meaning: str = "") -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be a whole number{meaning}, got {raw!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high}{meaning}, got {value}")
            return value

        database_url = text("DATABASE_URL")
        if database_url is None:
            problems.append("DATABASE_URL is not set (e.g. postgresql://user:pass@host/db)")
        else:
            database_url = normalise_database_url(database_url, problems)
        nats_url = text("NATS_URL", cls.nats_url) or cls.nats_url
        for part in nats_url.split(","):
            if urlparse(part.strip()).scheme not in ("nats", "tls", "ws", "wss"):
                problems.append(
                    f"NATS_URL must be nats://host:port, got {redacted(part.strip())!r}"
                )
        nats_sign_in = SignInSettings(
            creds=text("NATS_CREDS"),
            nkey_seed=text("NATS_NKEY_SEED"),
            nkey_seed_file=text("NATS_NKEY_SEED_FILE"),
            tls_cert=text("NATS_TLS_CERT"),
            tls_key=text("NATS_TLS_KEY"),
            tls_ca=text("NATS_TLS_CA"),
        )
        check_settings(nats_sign_in, problems)
        nats_namespace = text("NATS_NAMESPACE", cls.nats_namespace) or cls.nats_namespace
        if not _NAMESPACE.match(nats_namespace):
            problems.append(
                "NATS_NAMESPACE may hold only letters, digits, _ and - (at most 64), "
                f"got {nats_namespace!r}"
            )
        storage_url = text("STORAGE_URL", cls.storage_url) or cls.storage_url
        try:
            parsed_storage = urlparse(storage_url)
        except ValueError:
            parsed_storage = urlparse("")
        if parsed_storage.scheme not in ("file", "nats", "s3") or (
            parsed_storage.scheme == "s3" and not parsed_storage.netloc
        ):
            problems.append(
                "STORAGE_URL must be file:///path, nats://host:port[,host:port…]/bucket, "
                f"nats:///bucket (NATS_URL's servers) or s3://bucket/prefix, "
                f"got {redacted(storage_url)!r}"
            )
        elif parsed_storage.scheme == "nats":
            for part in filter(None, parsed_storage.netloc.split(",")):
                try:
                    _ = urlparse(f"nats://{part}").port  # raises for a port that is no number
                except ValueError:
                    problems.append(
                        "STORAGE_URL's servers must be host:port separated by commas, "
                        f"got {redacted(storage_url)!r}"
                    )
                    break
        elif parsed_storage.scheme == "s3":
            try:
                parse_s3_url(storage_url)
            except StorageError as exc:
                problems.append(str(exc))
        webhook_secret = text("WEBHOOK_SECRET")
        if webhook_secret is not None and not webhook_key_ok(webhook_secret):
            problems.append(
                "WEBHOOK_SECRET must be whsec_ followed by base64 of 24 to 64 random bytes "
                "(e.g. `python -c \"import base64,os; print('whsec_' + "
                'base64.b64encode(os.urandom(32)).decode())"`)'
            )
        tokens = parse_api_tokens(text("API_TOKENS") or "", problems)
        admin_token = text("ADMIN_TOKEN")
        if admin_token is not None and not usable_token(admin_token):
            problems.append("ADMIN_TOKEN must be printable ASCII with no space")
        secret_key = text("SECRET_KEY")
        if secret_key is not None and len(secret_key) < 32:
            problems.append(
                "SECRET_KEY must be at least 32 characters (e.g. `openssl rand -hex 32`)"
            )
        log_level = (text("LOG_LEVEL") or cls.log_level).upper()
        if log_level not in LOG_LEVELS:
            problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        log_format = (text("LOG_FORMAT") or cls.log_format).lower()
        if log_format not in LOG_FORMATS:
            problems.append(f"LOG_FORMAT must be json or text, got {log_format!r}")
        metrics_dir = text("METRICS_DIR")
        encode_thread = (text("ENCODE_THREAD") or cls.encode_thread).lower()
        if encode_thread not in ENCODE_THREAD_CHOICES:
            problems.append(f"ENCODE_THREAD must be auto, on or off, got {encode_thread!r}")

        def flag(name: str) -> bool:
            raw = (text(name) or "0").lower()
            if raw not in ("0", "1", "true", "false", "yes", "no"):
                problems.append(f"{name} must be 1 or 0, got {raw!r}")
            return raw in ("1", "true", "yes")

        config = cls(
            database_url=database_url or "",
            nats_url=nats_url,
            nats_sign_in=nats_sign_in,
            nats_namespace=nats_namespace,
            nats_replicas=number(
                "NATS_REPLICAS", cls.nats_replicas, 1, 5, " (copies of each JetStream stream)"
            ),
            storage_url=storage_url,
            api_tokens=tokens,
            admin_token=admin_token,
            secret_key=secret_key,
            trusted_proxy=text("TRUSTED_PROXY"),
            max_upload_mb=number("MAX_UPLOAD_MB", cls.max_upload_mb, 1, 100_000),
            uploads_per_hour=number(
                "UPLOADS_PER_HOUR", cls.uploads_per_hour, 0, 10**7, " per tenant (0 = no limit)"
            ),
            storage_quota_mb=number(
                "STORAGE_QUOTA_MB", cls.storage_quota_mb, 0, 10**9, " per tenant (0 = no limit)"
            ),
            max_duration_s=number(
                "MAX_DURATION_S", cls.max_duration_s, 1, 7 * 86400, " of seconds of audio"
            ),
            max_output_mb=number("MAX_OUTPUT_MB", cls.max_output_mb, 1, 10**6, " per job"),
            decode_timeout_s=number(
                "DECODE_TIMEOUT_S", cls.decode_timeout_s, 1, 86400, " of seconds"
            ),
            stage_time_limit_s=number(
                "STAGE_TIME_LIMIT_S", cls.stage_time_limit_s, 10, 86400, " of seconds"
            ),
            log_level=log_level,
            log_format=log_format,
            metrics_dir=Path(metrics_dir) if metrics_dir else _default_metrics_dir(),
            worker_metrics_port=number(
                "WORKER_METRICS_PORT", cls.worker_metrics_port, 0, 65535, " (a port; 0 = off)"
            ),
            worker_processes=number("WORKER_PROCESSES", cls.worker_processes, 1, 256),
            worker_threads=number("WORKER_THREADS", cls.worker_threads, 1, 256),
            encode_thread=encode_thread,
            tenant_max_running=number(
                "TENANT_MAX_RUNNING", cls.tenant_max_running, 0, 100_000, " (0 = no cap)"
            ),
            port=number("PORT", cls.port, 1, 65535, " (a port)"),
            web_threads=number("WEB_THREADS", cls.web_threads, 2, 1024),
            web_connection_limit=number(
                "WEB_CONNECTION_LIMIT", cls.web_connection_limit, 10, 100_000
            ),
            read_timeout_s=number("READ_TIMEOUT_S", cls.read_timeout_s, 1, 3600, " of seconds"),
            metrics_port=number("METRICS_PORT", cls.metrics_port, 0, 65535, " (a port; 0 = off)"),
            metrics_top_tenants=number(
                "METRICS_TOP_TENANTS", cls.metrics_top_tenants, 1, 1000, " of tenants"
            ),
            event_stream_max_s=number(
                "EVENT_STREAM_MAX_S", cls.event_stream_max_s, 1, 86400, " of seconds"
            ),
            event_streams_per_tenant=number(
                "EVENT_STREAMS_PER_TENANT", cls.event_streams_per_tenant, 1, 10_000
            ),
            graceful_timeout=number(
                "GRACEFUL_TIMEOUT", cls.graceful_timeout, 0, 3600, " of seconds"
            ),
            stuck_job_after_s=number(
                "STUCK_JOB_AFTER_S", cls.stuck_job_after_s, 10, 86400, " of seconds"
            ),
            sweep_interval_s=number(
                "SWEEP_INTERVAL_S", cls.sweep_interval_s, 0, 86400, " of seconds (0 = off)"
            ),
            orphan_after_s=number(
                "ORPHAN_AFTER_S", cls.orphan_after_s, 60, 30 * 86400, " of seconds"
            ),
            s3_presign=flag("S3_PRESIGN"),
            webhook_secret=webhook_secret,
            webhook_allow_private=flag("WEBHOOK_ALLOW_PRIVATE"),
            webhook_timeout_s=number(
                "WEBHOOK_TIMEOUT_S", cls.webhook_timeout_s, 1, 60, " of seconds"
            ),
            webhook_threads=number("WEBHOOK_THREADS", cls.webhook_threads, 1, 256),
            webhook_metrics_port=number(
                "WEBHOOK_METRICS_PORT", cls.webhook_metrics_port, 0, 65535, " (a port; 0 = off)"
            ),
        )
        if problems:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
        return config


ENCODE_THREAD_CHOICES = ("auto", "on", "off")

#: What a tenant's name may hold (it is stored with every upload and shown to admins).
TENANT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def bare_token_tenant(token: str) -> str:
    """The tenant of a token given without a name: its own, stable across restarts (``@``: a
    name no user tenant can take)."""
    return "@token-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def usable_token(token: str) -> bool:
    """Printable ASCII with no space: what a bearer token can be (compared in constant time)."""
    return bool(token) and token.isascii() and token.isprintable() and " " not in token


def parse_api_tokens(raw: str, problems: list[str]) -> dict[str, str]:
    """``API_TOKENS``: comma-separated ``tenant:token`` entries, or bare tokens (a tenant of
    their own, named by :func:`bare_token_tenant`). Tokens must be printable ASCII; a setting
    that holds no token (``API_TOKENS=,`` from unset shell variables) or names one token twice
    is refused rather than read as "open" or as the last tenant."""
    tokens: dict[str, str] = {}
    if raw.strip() and not raw.replace(",", "").strip():
        problems.append("API_TOKENS is set but holds no token (unset it to run open)")
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        tenant, sep, token = entry.partition(":")
        if not sep:
            tenant, token = "", entry
        tenant, token = tenant.strip(), token.strip()
        if not usable_token(token):
            problems.append("API_TOKENS entries must be tenant:token with a printable ASCII token")
            continue
        if tenant and not TENANT_NAME.match(tenant):
            problems.append(
                f"API_TOKENS tenant names may hold only letters, digits, _ . - (got {tenant!r})"
            )
            continue
        if token in tokens:
            problems.append("API_TOKENS names the same token twice")
            continue
        tokens[token] = tenant or bare_token_tenant(token)
    return tokens


def webhook_key_ok(secret: str) -> bool:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 to 64 bytes."""
    prefix, _, encoded = secret.partition("_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return prefix == "whsec" and 24 <= len(key) <= 64


def normalise_database_url(url: str, problems: list[str]) -> str:
    """Accept ``postgres://`` and ``postgresql://`` (Heroku-style); use the psycopg 3 driver."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        problems.append(f"DATABASE_URL must be a postgres:// or postgresql:// URL, got {url!r}")
        return url
    return f"postgresql+psycopg://{rest}"


def migration_database_url(given: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The database ``alembic`` migrates: ``given`` (``-x url=…``), else ``DATABASE_URL``.

    Migrations need nothing else, so nothing else is checked here.

    :raises ConfigError: no URL, or not a PostgreSQL one.
    """
    env = os.environ if env is None else env
    url = (given or env.get("DATABASE_URL", "")).strip()
    if not url:
        raise ConfigError("DATABASE_URL is not set (e.g. postgresql://user:pass@host/db)")
    problems: list[str] = []
    url = normalise_database_url(url, problems)
    if problems:
        raise ConfigError(problems[0])
    return url


def storage_path(storage_url: str) -> Path:
    """The directory of a ``file://`` storage URL (``file://./var`` is relative)."""
    parsed = urlparse(storage_url)
    return Path(parsed.netloc + parsed.path) if parsed.netloc else Path(parsed.path)


def environment(defaults: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """This process's environment over ``defaults`` and under ``overrides``: what a child
    process is started with (check it with :meth:`Config.from_env` first). Empty variables
    count as unset."""
    given = {name: value for name, value in os.environ.items() if value.strip()}
    return {**(defaults or {}), **given, **overrides}


def cli_environment(dev_env_file: Path = DEV_ENV_FILE) -> dict[str, str]:
    """The environment, with the settings of a running ``make run`` (``var/dev.env``) for the
    variables that are not set: an operator's own settings always win."""
    return environment(read_dev_env(dev_env_file))


def read_dev_env(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a file written by :func:`write_dev_env` ({} if there is none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs if name.strip() in DEV_ENV_NAMES}


def write_dev_env(path: Path, settings: Mapping[str, str]) -> None:
    """Leave the running stack's :data:`DEV_ENV_NAMES` settings where the CLI finds them."""
    lines = ["# written by `phantomchain dev` (make run) while it runs; removed when it stops"]
    lines += [f"{name}={settings[name]}" for name in DEV_ENV_NAMES if settings.get(name)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
