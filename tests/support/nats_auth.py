"""NATS servers that want more than a token: operator mode (JWTs, ``.creds``), nkey users,
client-certificate TLS — made in the test, from scratch, as ``nsc`` and ``openssl`` would.

The JWTs are written here (a header, the claims, an ed25519 signature by the issuer's nkey:
https://docs.nats.io/running-a-nats-service/configuration/securing_nats/jwt) so that a test
can set exactly what it needs — an expiry in the past, JetStream limits — with nothing but
the ``nkeys`` package.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

from app.embedded.nats_server import NatsServer

#: The sections of a ``.creds`` file, as ``nsc`` writes it.
CREDS_TEMPLATE = """-----BEGIN NATS USER JWT-----
{jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
{seed}
------END USER NKEY SEED------

*************************************************************
"""


@dataclass(frozen=True)
class Key:
    """An nkey pair: ``seed`` (``S…``, secret) and ``public`` (``O…``, ``A…``, ``U…``)."""

    seed: str
    public: str

    @classmethod
    def make(cls, prefix: int) -> Key:
        seed = nkeys.encode_seed(os.urandom(32), prefix).decode()
        return cls(seed, nkeys.from_seed(seed.encode()).public_key.decode())

    def sign(self, data: bytes) -> bytes:
        return nkeys.from_seed(self.seed.encode()).sign(data)


def operator_key() -> Key:
    return Key.make(nkeys.PREFIX_BYTE_OPERATOR)


def account_key() -> Key:
    return Key.make(nkeys.PREFIX_BYTE_ACCOUNT)


def user_key() -> Key:
    return Key.make(nkeys.PREFIX_BYTE_USER)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def encode_jwt(issuer: Key, subject: str, name: str, nats: dict[str, Any], **claims: Any) -> str:
    """A NATS JWT (v2) for ``subject``, signed by ``issuer``; ``claims`` such as ``exp``."""
    body: dict[str, Any] = {
        "iat": int(time.time()) - 60,
        "iss": issuer.public,
        "name": name,
        "sub": subject,
        "nats": {"version": 2, **nats},
        **claims,
    }
    unsigned = json.dumps(body, sort_keys=True).encode()
    digest = hashlib.new("sha512_256", unsigned).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = _b64(json.dumps(body).encode())
    signature = _b64(issuer.sign(f"{header}.{payload}".encode()))
    return f"{header}.{payload}.{signature}"


#: An account's limits with JetStream on and unbounded (no JetStream without them).
JETSTREAM_LIMITS = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
    "mem_storage": -1,
    "disk_storage": -1,
    "streams": -1,
    "consumer": -1,
}


@dataclass(frozen=True)
class Operator:
    """An operator, its system account and one application account with JetStream."""

    key: Key
    jwt: str
    system: Key
    system_jwt: str
    account: Key
    account_jwt: str

    @classmethod
    def make(cls) -> Operator:
        operator, system, account = operator_key(), account_key(), account_key()
        op_jwt = encode_jwt(operator, operator.public, "test-operator", {"type": "operator"})
        system_jwt = encode_jwt(
            operator, system.public, "SYS", {"type": "account", "limits": {"conn": -1}}
        )
        account_jwt = encode_jwt(
            operator, account.public, "APP", {"type": "account", "limits": JETSTREAM_LIMITS}
        )
        return cls(operator, op_jwt, system, system_jwt, account, account_jwt)

    def user(self, name: str = "worker", *, expires: float | None = None) -> tuple[Key, str]:
        """A user of the application account and its JWT (``expires``: a Unix time)."""
        user = user_key()
        claims: dict[str, Any] = {"exp": int(expires)} if expires is not None else {}
        nats = {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}
        return user, encode_jwt(self.account, user.public, name, nats, **claims)

    def server_config(self) -> str:
        """nats-server settings trusting this operator, its accounts preloaded in memory
        (JetStream and its store come from :class:`NatsServer`'s command line)."""
        return (
            f"operator: {self.jwt}\n"
            f"system_account: {self.system.public}\n"
            "resolver: MEMORY\n"
            "resolver_preload: {\n"
            f"  {self.system.public}: {self.system_jwt}\n"
            f"  {self.account.public}: {self.account_jwt}\n"
            "}\n"
        )


def write_creds(path: Path, user: Key, jwt: str) -> Path:
    """A ``.creds`` file for ``user`` (mode 600, as ``nsc`` leaves it)."""
    path.write_text(CREDS_TEMPLATE.format(jwt=jwt, seed=user.seed))
    path.chmod(0o600)
    return path


def nkey_users_config(*users: Key) -> str:
    """nats-server settings letting in these nkey users (JetStream on)."""
    listed = ", ".join(f"{{ nkey: {user.public} }}" for user in users)
    return f"authorization {{ users = [ {listed} ] }}\n"


# -- TLS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """PEM files: a CA, a server certificate for 127.0.0.1/localhost, a client certificate,
    and a second CA that signed neither (to show a CA that does not verify the server)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path

    def server_config(self) -> str:
        """nats-server settings requiring TLS and a client certificate signed by the CA."""
        return (
            "tls {\n"
            f"  cert_file: {json.dumps(str(self.server_cert))}\n"
            f"  key_file: {json.dumps(str(self.server_key))}\n"
            f"  ca_file: {json.dumps(str(self.ca))}\n"
            "  verify: true\n"
            "}\n"
        )


def make_certificates(folder: Path) -> Certificates:
    """Write a test PKI under ``folder`` (the ``cryptography`` package; no ``openssl``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def authority(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(name(common))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(
        ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common: str, server: bool
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        return key, builder.sign(ca_key, hashes.SHA256())

    ca_key, ca_cert = authority("phantomchain test CA")
    server_key, server_cert = leaf(ca_key, ca_cert, "localhost", server=True)
    client_key, client_cert = leaf(ca_key, ca_cert, "phantomchain-worker", server=False)
    _, other_ca = authority("some other CA")
    return Certificates(
        ca=write_cert(ca_cert, folder / "ca.pem"),
        server_cert=write_cert(server_cert, folder / "server.pem"),
        server_key=write_key(server_key, folder / "server-key.pem"),
        client_cert=write_cert(client_cert, folder / "client.pem"),
        client_key=write_key(client_key, folder / "client-key.pem"),
        other_ca=write_cert(other_ca, folder / "other-ca.pem"),
    )


# -- servers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def configured_server(folder: Path, config: str) -> Iterator[NatsServer]:
    """A nats-server with JetStream, on a free loopback port, reading ``config`` (written to
    ``folder/nats.conf``); stopped on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nats.conf"
    conf.write_text(config)
    server = NatsServer(store_dir=folder / "js", extra_args=("-c", str(conf)))
    server.start()
    try:
        yield server
    finally:
        server.stop()
