"""How a client proves who it is to NATS beyond a token or user/password in the URL.

:class:`NatsSignIn` holds a ``.creds`` file (a user JWT and its nkey seed, as ``nsc`` writes
them: operator mode, Synadia Cloud), a bare nkey user seed, and TLS files (a client
certificate and key, a CA bundle for the server's certificate). It turns into nats-py
``connect()`` keyword arguments (:meth:`NatsSignIn.connect_options`).

The wire client (:mod:`broker.wire`) speaks no TLS: a broker given TLS files uses nats-py for
everything (:attr:`NatsSignIn.uses_tls`). It does sign the server's nonce with a ``.creds``
file or an nkey seed (:meth:`NatsSignIn.nonce_fields`), so those keep its fast path on plain
``nats://`` servers.

A sign-in the server refuses (or a server whose certificate we refuse) is not an outage: the
same settings will be refused again. :func:`refusal` recognises those errors so that a
connection gives up at once with :class:`SignInRefused` instead of retrying until its timeout.
"""

from __future__ import annotations

import base64
import ssl
from collections import UserString
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dramatiq.errors import BrokerConnectionError

#: :attr:`SignInRefused.kind`: what is wrong — who we are (creds, nkey, user/password)…
CREDENTIALS = "credentials"
#: …the server's certificate did not verify against the CA we trust…
SERVER_CERTIFICATE = "server certificate"
#: …or the TLS handshake failed otherwise (most often: our client certificate was refused)…
TLS = "tls"
#: …or TLS was asked for (``tls://``, TLS files) and the server offers none.
NO_TLS = "no tls"


class TlsNotOffered(ssl.SSLError):
    """The server offers no TLS where TLS was asked for: nothing is sent in the clear. An
    :class:`OSError`, so nats-py treats it as a failed connection (reported, tried again)."""


@dataclass(frozen=True)
class NatsSignIn:
    """What a NATS client signs in with, besides what its URL holds. All optional.

    :param creds_file: path of a ``.creds`` file (user JWT + nkey seed).
    :param nkey_seed: an nkey user seed (``SU…``) itself — a secret: never in ``repr``.
    :param nkey_seed_file: path of a file holding an nkey user seed.
    :param tls_cert: path of the client certificate (PEM), with ``tls_key``.
    :param tls_key: path of the client certificate's private key (PEM).
    :param tls_ca: path of the CA bundle that signs the server's certificate (PEM); unset: the
        system's (or ``SSL_CERT_FILE``'s).
    """

    creds_file: str | None = None
    nkey_seed: str | None = field(default=None, repr=False)
    nkey_seed_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None

    @property
    def uses_tls(self) -> bool:
        """True when a TLS setting is given (the client then brings its own SSL context)."""
        return bool(self.tls_cert or self.tls_key or self.tls_ca)

    @property
    def signs_nonce(self) -> bool:
        """True when the client signs the server's nonce (creds or an nkey seed)."""
        return bool(self.creds_file or self.nkey_seed or self.nkey_seed_file)

    def nonce_fields(self, nonce: str) -> dict[str, str]:
        """``CONNECT`` fields answering a server's ``nonce`` (for :mod:`broker.wire`): its
        signature by our nkey, with our user JWT (a ``.creds`` file) or public nkey.

        :raises OSError: a file cannot be read; :class:`ValueError`: not a ``.creds`` file or
            not a seed.
        """
        import nkeys  # nats-py's own dependency for the same

        jwt, seed = self._jwt_and_seed()
        try:
            keys = nkeys.from_seed(seed)
        except Exception as exc:  # nkeys' own errors and binascii's
            raise ValueError("not an nkey seed") from exc
        try:
            fields = {"sig": base64.b64encode(keys.sign(nonce.encode())).decode()}
            if jwt is not None:
                fields["jwt"] = jwt
            else:
                fields["nkey"] = keys.public_key.decode()
        finally:
            keys.wipe()
        return fields

    def _jwt_and_seed(self) -> tuple[str | None, bytearray]:
        if self.creds_file:
            text = Path(self.creds_file).read_text(encoding="utf-8")
            jwt, seed = creds_line(text, "NATS USER JWT"), creds_line(text, "USER NKEY SEED")
            if jwt is None or seed is None:
                raise ValueError(f"{self.creds_file} is not a .creds file")
            return jwt, bytearray(seed.encode())
        if self.nkey_seed:
            return None, bytearray(self.nkey_seed.strip().encode())
        if self.nkey_seed_file:
            return None, bytearray(Path(self.nkey_seed_file).read_text().strip().encode())
        raise ValueError("no creds file nor nkey seed to sign with")

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context verifying the server against ``tls_ca`` (else the system's
        CAs), presenting ``tls_cert`` when given.

        :raises OSError: a file cannot be read; :class:`ssl.SSLError`: not a PEM certificate
            or key, or the key does not match the certificate.
        """
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for nats-py's ``Client.connect`` (empty when nothing is set)."""
        options: dict[str, Any] = {}
        if self.creds_file:
            options["user_credentials"] = CredsForNatsPy(self.creds_file)
        if self.nkey_seed:
            options["nkeys_seed_str"] = self.nkey_seed
        elif self.nkey_seed_file:
            options["nkeys_seed"] = self.nkey_seed_file
        if self.uses_tls:
            options["tls"] = self.ssl_context()
        return options


def shown(servers: str | list[str]) -> str:
    """Server URLs as they may be logged or shown: a token or user:password in one (``nats://
    user:secret@host``) is replaced by ``***``."""
    from urllib.parse import urlsplit

    urls = servers.split(",") if isinstance(servers, str) else servers
    safe = []
    for url in (u.strip() for u in urls):
        parts = urlsplit(url)
        if "@" in parts.netloc:
            url = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()
        safe.append(url)
    return ", ".join(safe)


def creds_line(text: str, section: str) -> str | None:
    """The first line after a ``.creds`` file's ``-----BEGIN <section>-----`` marker."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if f"BEGIN {section}" in line:
            following = [rest.strip() for rest in lines[i + 1 :] if rest.strip()]
            return following[0] if following else None
    return None


class CredsForNatsPy(UserString):
    """A ``.creds`` file as nats-py's ``user_credentials``, read anew each time nats-py signs
    a nonce (renewed credentials are picked up at the next connection), and handed to it as
    ``nsc`` writes it.

    nats-py takes the line right after each marker byte for byte: a file with CRLF line ends,
    a blank line after a marker or indented lines — which the server and our own checks
    (:func:`creds_line`) take — would give it a seed it cannot decode. Its text (the seed)
    is never kept here.
    """

    def __init__(self, path: str) -> None:  # no UserString.__init__: ``data`` is read, not kept
        self.path = path

    @property
    def data(self) -> str:  # type: ignore[override]  # what nats-py reads: ``creds.data``
        text = Path(self.path).read_text(encoding="utf-8")
        jwt, seed = creds_line(text, "NATS USER JWT"), creds_line(text, "USER NKEY SEED")
        if jwt is None or seed is None:
            raise ValueError(f"{self.path} is not a .creds file")
        return (
            f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )

    def __repr__(self) -> str:
        return f"CredsForNatsPy({self.path!r})"


class SignInRefused(BrokerConnectionError):
    """NATS refused our sign-in, or we refused the server's certificate: trying again with
    the same settings cannot help.

    :param kind: :data:`CREDENTIALS`, :data:`SERVER_CERTIFICATE` or :data:`TLS`.
    :param reason: a few words, e.g. ``"authorization violation"`` (never a secret).
    """

    def __init__(self, kind: str, reason: str, servers: str = "") -> None:
        where = f" at {servers}" if servers else ""
        super().__init__(f"NATS{where} refused the sign-in: {reason}")
        self.kind = kind
        self.reason = reason


def refusal(exc: BaseException) -> SignInRefused | None:
    """The :class:`SignInRefused` that ``exc`` (raised while connecting) means, or ``None``
    when it is something that may pass (a server away, a timeout)."""
    if isinstance(exc, SignInRefused):
        return exc
    if isinstance(exc, TlsNotOffered):
        return SignInRefused(NO_TLS, "it offers no TLS, and TLS was asked for")
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or "not trusted"
        reason = f"the server's certificate did not verify ({detail})"
        return SignInRefused(SERVER_CERTIFICATE, reason)
    if isinstance(exc, ssl.SSLError) and not isinstance(
        exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLWantReadError
    ):
        detail = (exc.reason or str(exc)).replace("_", " ").lower()
        return SignInRefused(TLS, f"the TLS handshake failed ({detail})")
    text = str(exc).lower()
    if type(exc).__name__ == "AuthorizationError" or "authorization violation" in text:
        return SignInRefused(CREDENTIALS, "authorization violation")
    if "authentication expired" in text:
        return SignInRefused(CREDENTIALS, "the user's authentication expired")
    if "authentication timeout" in text:
        return SignInRefused(CREDENTIALS, "authentication timeout (the server wants credentials)")
    return None
