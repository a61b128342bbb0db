"""How a client proves who it is to NATS beyond a token or user/password in the URL.

:class:`NatsSignIn` holds a ``.creds`` file (a user JWT and its nkey seed, as ``nsc`` writes
them: operator mode, Synadia Cloud), a bare nkey user seed, and TLS files (a client
certificate and key, a CA bundle for the server's certificate). It turns into nats-py
``connect()`` keyword arguments (:meth:`NatsSignIn.connect_options`).

The wire client (:mod:`broker.wire`) signs in with a token or user/password only: a broker
given any of these settings uses nats-py for everything (:attr:`NatsSignIn.needs_nats_py`).

A sign-in the server refuses (or a server whose certificate we refuse) is not an outage: the
same settings will be refused again. :func:`refusal` recognises those errors so that a
connection gives up at once with :class:`SignInRefused` instead of retrying until its timeout.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from dramatiq.errors import BrokerConnectionError

#: :attr:`SignInRefused.kind`: what is wrong — who we are (creds, nkey, user/password)…
CREDENTIALS = "credentials"
#: …the server's certificate did not verify against the CA we trust…
SERVER_CERTIFICATE = "server certificate"
#: …or the TLS handshake failed otherwise (most often: our client certificate was refused).
TLS = "tls"


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

    @property
    def needs_nats_py(self) -> bool:
        """True when the wire client cannot sign in this way (it speaks no TLS, signs no
        nonce): the broker then uses nats-py for publishing and pulling too."""
        return self.uses_tls or self.signs_nonce

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
            options["user_credentials"] = self.creds_file
        if self.nkey_seed:
            options["nkeys_seed_str"] = self.nkey_seed
        elif self.nkey_seed_file:
            options["nkeys_seed"] = self.nkey_seed_file
        if self.uses_tls:
            options["tls"] = self.ssl_context()
        return options


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
