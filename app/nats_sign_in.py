"""Signing in to NATS as operators run it: a ``.creds`` file (operator mode, Synadia Cloud),
an nkey user seed, client-certificate TLS with a private CA.

The settings (``NATS_CREDS``, ``NATS_NKEY_SEED`` or ``NATS_NKEY_SEED_FILE``, ``NATS_TLS_CERT``
with ``NATS_TLS_KEY``, ``NATS_TLS_CA``) are read by :meth:`app.config.Config.from_env` and
checked here: a file that cannot be read, a seed that is not a user's,
a certificate without its key, a user JWT already expired — each is one sentence of its
problem list. A seed is a secret: no message here ever holds one.

What the server refuses at start (wrong credentials, a client certificate it does not take, a
server certificate our CA does not verify) ends a process with :func:`refused_line`: one
sentence naming the setting to check (:func:`check_at_start`).

Nothing here loads dramatiq or nats-py at import: the configuration is read by every command.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker import NatsBroker
    from broker.sign_in import NatsSignIn, SignInRefused

#: The settings this module reads, in the order the docs list them.
SETTINGS = (
    "NATS_CREDS",
    "NATS_NKEY_SEED",
    "NATS_NKEY_SEED_FILE",
    "NATS_TLS_CERT",
    "NATS_TLS_KEY",
    "NATS_TLS_CA",
)


@dataclass(frozen=True)
class SignInSettings:
    """The sign-in settings as given (paths, and the seed itself — never shown)."""

    creds: str | None = None
    nkey_seed: str | None = field(default=None, repr=False)
    nkey_seed_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None

    @property
    def any(self) -> bool:
        """True when any is set (a process then checks at start that NATS takes them)."""
        return any(
            (
                self.creds,
                self.nkey_seed,
                self.nkey_seed_file,
                self.tls_cert,
                self.tls_key,
                self.tls_ca,
            )
        )

    def for_broker(self) -> NatsSignIn:
        """The :class:`broker.sign_in.NatsSignIn` the broker, the bucket and ``/readyz`` use."""
        from broker.sign_in import NatsSignIn

        return NatsSignIn(
            creds_file=self.creds,
            nkey_seed=self.nkey_seed,
            nkey_seed_file=self.nkey_seed_file,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            tls_ca=self.tls_ca,
        )


def check_settings(settings: SignInSettings, problems: list[str]) -> None:
    """Append each problem of ``settings`` to ``problems``, one sentence each."""
    if settings.nkey_seed and settings.nkey_seed_file:
        problems.append(
            "NATS_NKEY_SEED and NATS_NKEY_SEED_FILE are both set: give the seed one way"
        )
    seed_name = "NATS_NKEY_SEED" if settings.nkey_seed else "NATS_NKEY_SEED_FILE"
    if settings.creds and (settings.nkey_seed or settings.nkey_seed_file):
        problems.append(
            f"NATS_CREDS and {seed_name} are both set: sign in with one of them "
            "(a .creds file holds its own nkey seed)"
        )
    if settings.creds:
        _check_creds(settings.creds, problems)
    if settings.nkey_seed:
        _check_seed("NATS_NKEY_SEED", settings.nkey_seed, problems)
    elif settings.nkey_seed_file:
        seed = _read("NATS_NKEY_SEED_FILE", settings.nkey_seed_file, problems)
        if seed is not None:
            _check_seed(f"NATS_NKEY_SEED_FILE ({settings.nkey_seed_file})", seed, problems)
    _check_tls(settings, problems)


def _read(name: str, path: str, problems: list[str]) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        problems.append(f"{name} names {path!r}, which cannot be read ({reason})")
        return None


def _seed_problem(seed: str) -> str | None:
    """What is wrong with ``seed`` as an nkey user seed (never quoting it), or ``None``."""
    import nkeys

    if not seed.startswith("SU"):
        return "is not an nkey user seed (one starts with SU)"
    try:
        decoded = base64.b32decode(seed + "=" * (-len(seed) % 8))
        nkeys.from_seed(seed.encode())
    except Exception:  # nkeys raises its own errors, and binascii's for bad base32
        decoded = b""
    # nkeys.from_seed does not check the checksum: a seed with a typo would sign in as nobody.
    if len(decoded) != 36 or nkeys.crc16_checksum(decoded[:-2]) != decoded[-2:]:
        return "is not a valid nkey user seed (its checksum or length is wrong)"
    return None


def _check_seed(name: str, seed: str, problems: list[str]) -> None:
    problem = _seed_problem(seed.strip())
    if problem is not None:
        problems.append(f"{name} {problem}; the value is not shown")


def _section(text: str, begin: str) -> str | None:
    """The first line after the ``-----BEGIN <begin>-----`` marker of a ``.creds`` file."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if f"BEGIN {begin}" in line:
            following = [rest.strip() for rest in lines[i + 1 :] if rest.strip()]
            return following[0] if following else None
    return None


def _check_creds(path: str, problems: list[str]) -> None:
    text = _read("NATS_CREDS", path, problems)
    if text is None:
        return
    jwt = _section(text, "NATS USER JWT")
    seed = _section(text, "USER NKEY SEED")
    if jwt is None or seed is None:
        problems.append(
            f"NATS_CREDS names {path!r}, which is not a .creds file (a user JWT and an nkey "
            "seed, as `nsc generate creds` writes)"
        )
        return
    seed_problem = _seed_problem(seed)
    if seed_problem is not None:
        problems.append(f"NATS_CREDS {path!r}: its seed {seed_problem}")
        return
    claims = _jwt_claims(jwt)
    if claims is None or (claims.get("nats") or {}).get("type", "user") != "user":
        problems.append(f"NATS_CREDS {path!r}: its JWT is not a NATS user JWT")
        return
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires <= time.time():
        at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        problems.append(
            f"NATS_CREDS {path!r}: its user JWT expired at {at} (issue new credentials, "
            "e.g. `nsc generate creds`)"
        )


def _jwt_claims(jwt: str) -> dict | None:
    """The claims of a JWT, unverified (the server verifies them; this only reads ``exp``)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _check_tls(settings: SignInSettings, problems: list[str]) -> None:
    if not (settings.tls_cert or settings.tls_key or settings.tls_ca):
        return
    if bool(settings.tls_cert) != bool(settings.tls_key):
        given, missing = (
            ("NATS_TLS_CERT", "NATS_TLS_KEY")
            if settings.tls_cert
            else ("NATS_TLS_KEY", "NATS_TLS_CERT")
        )
        problems.append(f"{given} is set without {missing}: give the certificate and its key")
    readable = {
        name: path
        for name, path in (
            ("NATS_TLS_CERT", settings.tls_cert),
            ("NATS_TLS_KEY", settings.tls_key),
            ("NATS_TLS_CA", settings.tls_ca),
        )
        if path and _read(name, path, problems) is not None
    }
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # only to load the files: no CA store
    if "NATS_TLS_CA" in readable:
        try:
            context.load_verify_locations(cafile=readable["NATS_TLS_CA"])
        except ssl.SSLError:
            problems.append(
                f"NATS_TLS_CA names {readable['NATS_TLS_CA']!r}, which holds no PEM certificate"
            )
    if "NATS_TLS_CERT" in readable and "NATS_TLS_KEY" in readable:
        try:
            context.load_cert_chain(readable["NATS_TLS_CERT"], readable["NATS_TLS_KEY"])
        except ssl.SSLError:
            problems.append(
                "NATS_TLS_CERT and NATS_TLS_KEY must be a PEM certificate and its own "
                "unencrypted private key"
            )


# -- at start --------------------------------------------------------------------------------


def refused_line(refused: SignInRefused, settings: SignInSettings, servers: str) -> str:
    """One sentence for a refused sign-in, naming the setting to check."""
    from broker.sign_in import CREDENTIALS, NO_TLS, SERVER_CERTIFICATE, shown

    if refused.kind == NO_TLS:
        check = "NATS_URL (the server must offer TLS; nothing was sent in the clear)"
    elif refused.kind == SERVER_CERTIFICATE:
        check = "NATS_TLS_CA (the CA that signed the server's certificate)"
    elif refused.kind == CREDENTIALS:
        if settings.creds:
            check = "NATS_CREDS (a current user JWT of an account this server trusts)"
        elif settings.nkey_seed or settings.nkey_seed_file:
            which = "NATS_NKEY_SEED" if settings.nkey_seed else "NATS_NKEY_SEED_FILE"
            check = f"{which} (a user the server lists)"
        else:
            check = "the token or user:password in NATS_URL, or set NATS_CREDS"
    else:
        check = "NATS_TLS_CERT and NATS_TLS_KEY (a client certificate the server's CA signed)"
    return f"NATS at {shown(servers)} refused the sign-in ({refused.reason}): check {check}"


def _signs_in_by_url(servers: str) -> bool:
    """Whether a server URL asks for TLS (``tls://``) or holds a token or user:password."""
    from urllib.parse import urlsplit

    urls = [urlsplit(url.strip()) for url in servers.split(",")]
    return any(url.scheme in ("tls", "wss") or "@" in url.netloc for url in urls)


def check_at_start(broker: NatsBroker, settings: SignInSettings, servers: str) -> str | None:
    """Connect once where sign-in settings are given, or ``servers`` ask for TLS or carry a
    token or password: the one line to end the process with when NATS refuses them, else
    ``None`` (a NATS that does not answer yet is ridden out as ever, not a reason to stop)."""
    if not settings.any and not _signs_in_by_url(servers):
        return None
    from dramatiq.errors import BrokerConnectionError

    from broker.sign_in import SignInRefused

    try:
        broker.check_sign_in()
    except SignInRefused as refused:
        return refused_line(refused, settings, servers)
    except BrokerConnectionError:
        return None
    return None
