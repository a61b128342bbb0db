"""What the commands share: settings, the services' connections, errors, tables.

Operators run these in a hurry: every expected failure (bad settings, unknown id, a server
that does not answer) ends with one line on stderr and a meaningful exit status — 2 for
configuration, 1 for the rest — never a stack trace.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from app.config import Config, ConfigError, cli_environment

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from broker import NatsBroker

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_CONFIG = 2


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_config() -> Config:
    """Settings from the environment — completed by a running ``make run``'s ``var/dev.env``
    where unset; a bad one ends the command with exit status 2."""
    try:
        return Config.from_env(cli_environment())
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)


def make_sessions(config: Config) -> sessionmaker[Session]:
    from app.db import make_sessions  # the database driver loads only for commands that use it

    return make_sessions(config.database_url)


def make_broker(config: Config) -> NatsBroker:
    from app.queue import make_broker  # dramatiq and nats-py load only for commands that use it

    return make_broker(
        config.nats_url,
        config.nats_namespace,
        replicas=config.nats_replicas,
        sign_in=config.nats_sign_in.for_broker(),
    )


def handle_errors(command: F) -> F:
    """Turn unreachable servers into one readable line (exit 1) instead of a traceback; a
    sign-in NATS refuses is one line too, naming the setting to check (exit 2)."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        # Here, not at the top: `phantomchain --help` loads neither dramatiq nor SQLAlchemy.
        from app.outages import DATABASE, KINDS, QUEUE, detail, outage_of

        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except KINDS as exc:
            refused = _refused_line(exc)
            if refused is not None:
                fail(refused, EXIT_CONFIG)
            away = outage_of(exc)
            if away is None:
                raise
            if away is DATABASE:
                fail(f"cannot reach the database: {detail(exc)}")
            elif away is QUEUE:
                fail(f"cannot reach NATS at {_nats_url()}: {detail(exc) or type(exc).__name__}")
            else:
                fail(f"cannot reach the file storage: {detail(exc)}")

    return run  # type: ignore[return-value]


def _refused_line(exc: BaseException) -> str | None:
    """The one line for a sign-in NATS refused (the bucket's too: its cause), else ``None``."""
    from app.nats_sign_in import refused_line
    from broker.sign_in import SignInRefused

    refused = exc if isinstance(exc, SignInRefused) else exc.__cause__
    if not isinstance(refused, SignInRefused):
        return None
    try:
        config = Config.from_env(cli_environment())
    except ConfigError:  # the settings changed under the command (var/dev.env went away)
        return str(refused)
    return refused_line(refused, config.nats_sign_in, config.nats_url)


def _nats_url() -> str:
    """NATS_URL as it may be shown: a token or user:password in it as ``***``."""
    from broker.sign_in import shown

    try:
        return shown(Config.from_env(cli_environment()).nats_url)
    except ConfigError:  # the settings changed under the command (var/dev.env went away)
        return "NATS_URL"


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain left-aligned table (no colours: it is often piped or pasted)."""
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def short(text: Any, width: int = 60) -> str:
    """One line of at most ``width`` characters."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
