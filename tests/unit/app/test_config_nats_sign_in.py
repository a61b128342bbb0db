"""The NATS sign-in settings (``NATS_CREDS``, ``NATS_NKEY_SEED(_FILE)``, ``NATS_TLS_*``) and
``STORAGE_URL``'s servers, as :meth:`Config.from_env` checks them: each problem one sentence
of the list, a seed never quoted."""

from __future__ import annotations

import time

import pytest

from app.config import Config, ConfigError
from app.storage import NatsObjectStorage, storage_of
from tests.support.nats_auth import (
    Operator,
    account_key,
    make_certificates,
    user_key,
    write_creds,
)

BASE = {"DATABASE_URL": "postgresql://db/app"}


def problems(**settings: str) -> str:
    with pytest.raises(ConfigError) as error:
        Config.from_env({**BASE, **settings})
    return str(error.value)


@pytest.fixture(scope="module")
def operator() -> Operator:
    return Operator.make()


def test_a_creds_file_is_taken(tmp_path, operator):
    user, jwt = operator.user()
    creds = write_creds(tmp_path / "user.creds", user, jwt)
    config = Config.from_env({**BASE, "NATS_CREDS": str(creds)})
    assert config.nats_sign_in.creds == str(creds)
    sign_in = config.nats_sign_in.for_broker()
    assert sign_in.signs_nonce and not sign_in.uses_tls  # the wire client signs the nonce
    options = sign_in.connect_options()
    assert list(options) == ["user_credentials"]  # read by nats-py at each connection
    assert options["user_credentials"].path == str(creds)
    assert user.seed not in repr(options)


def test_no_sign_in_settings():
    config = Config.from_env(BASE)
    assert not config.nats_sign_in.any
    assert not config.nats_sign_in.for_broker().signs_nonce
    assert config.nats_sign_in.for_broker().connect_options() == {}


def test_a_creds_file_that_is_missing_or_is_something_else(tmp_path):
    missing = tmp_path / "nowhere.creds"
    assert f"NATS_CREDS names '{missing}', which cannot be read" in problems(
        NATS_CREDS=str(missing)
    )
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    assert f"NATS_CREDS names '{other}', which is not a .creds file" in problems(
        NATS_CREDS=str(other)
    )


def test_an_expired_user_jwt_is_refused_with_its_date(tmp_path, operator):
    user, jwt = operator.user(expires=time.time() - 3600)
    creds = write_creds(tmp_path / "old.creds", user, jwt)
    message = problems(NATS_CREDS=str(creds))
    assert f"NATS_CREDS '{creds}': its user JWT expired at" in message
    assert user.seed not in message


def test_a_user_jwt_expiring_later_is_taken(tmp_path, operator):
    user, jwt = operator.user(expires=time.time() + 3600)
    creds = write_creds(tmp_path / "new.creds", user, jwt)
    assert Config.from_env({**BASE, "NATS_CREDS": str(creds)}).nats_sign_in.creds


def test_creds_and_a_seed_together_are_refused(tmp_path, operator):
    user, jwt = operator.user()
    creds = write_creds(tmp_path / "user.creds", user, jwt)
    message = problems(NATS_CREDS=str(creds), NATS_NKEY_SEED=user_key().seed)
    assert "NATS_CREDS and NATS_NKEY_SEED are both set" in message


def test_a_seed_that_is_not_a_users_is_refused_and_never_shown(tmp_path):
    account_seed = account_key().seed
    message = problems(NATS_NKEY_SEED=account_seed)
    assert "NATS_NKEY_SEED is not an nkey user seed (one starts with SU)" in message
    assert account_seed not in message
    broken = user_key().seed[:-3] + "AAA"
    message = problems(NATS_NKEY_SEED=broken)
    assert "NATS_NKEY_SEED is not a valid nkey user seed" in message
    assert broken not in message and "the value is not shown" in message


def test_a_seed_in_a_file(tmp_path):
    user = user_key()
    seed_file = tmp_path / "nats.seed"
    seed_file.write_text(user.seed + "\n")
    config = Config.from_env({**BASE, "NATS_NKEY_SEED_FILE": str(seed_file)})
    assert config.nats_sign_in.for_broker().connect_options() == {"nkeys_seed": str(seed_file)}
    assert user.seed not in repr(config)

    seed_file.write_text(account_key().seed)
    message = problems(NATS_NKEY_SEED_FILE=str(seed_file))
    assert f"NATS_NKEY_SEED_FILE ({seed_file}) is not an nkey user seed" in message
    both = problems(NATS_NKEY_SEED_FILE=str(seed_file), NATS_NKEY_SEED=user.seed)
    assert "NATS_NKEY_SEED and NATS_NKEY_SEED_FILE are both set" in both
    assert user.seed not in both


def test_a_seed_given_as_a_value_stays_out_of_repr():
    seed = user_key().seed
    config = Config.from_env({**BASE, "NATS_NKEY_SEED": seed})
    assert config.nats_sign_in.for_broker().connect_options() == {"nkeys_seed_str": seed}
    assert seed not in repr(config) and seed not in repr(config.nats_sign_in.for_broker())


def test_tls_files(tmp_path):
    certs = make_certificates(tmp_path / "pki")
    config = Config.from_env(
        {
            **BASE,
            "NATS_TLS_CERT": str(certs.client_cert),
            "NATS_TLS_KEY": str(certs.client_key),
            "NATS_TLS_CA": str(certs.ca),
        }
    )
    sign_in = config.nats_sign_in.for_broker()
    assert sign_in.uses_tls and not sign_in.signs_nonce
    assert sign_in.connect_options()["tls"].verify_mode.name == "CERT_REQUIRED"

    assert "NATS_TLS_CERT is set without NATS_TLS_KEY" in problems(
        NATS_TLS_CERT=str(certs.client_cert)
    )
    assert "NATS_TLS_KEY is set without NATS_TLS_CERT" in problems(
        NATS_TLS_KEY=str(certs.client_key)
    )
    mismatched = problems(NATS_TLS_CERT=str(certs.client_cert), NATS_TLS_KEY=str(certs.server_key))
    assert "NATS_TLS_CERT and NATS_TLS_KEY must be a PEM certificate and its own" in mismatched
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    assert f"NATS_TLS_CA names '{not_pem}', which holds no PEM certificate" in problems(
        NATS_TLS_CA=str(not_pem)
    )
    assert "NATS_TLS_CA names '/no/such/ca.pem', which cannot be read" in problems(
        NATS_TLS_CA="/no/such/ca.pem"
    )


def test_every_sign_in_problem_is_listed_at_once(tmp_path):
    message = problems(
        NATS_CREDS=str(tmp_path / "missing.creds"),
        NATS_NKEY_SEED="SUnotaseed",
        NATS_TLS_CERT=str(tmp_path / "missing.pem"),
        LOG_LEVEL="loud",
    )
    lines = message.splitlines()
    assert lines[0] == "invalid configuration:"
    assert sum(line.startswith("  - NATS_") for line in lines) >= 4
    assert any(line.startswith("  - LOG_LEVEL") for line in lines)


def test_storage_url_names_several_servers_or_natss_own():
    several = Config.from_env({**BASE, "STORAGE_URL": "nats://h1:4222,h2:4222/audio"})
    store = storage_of(several)
    assert isinstance(store, NatsObjectStorage) and store.bucket == "audio"
    assert store._conn.servers == ["nats://h1:4222", "nats://h2:4222"]

    shared = Config.from_env(
        {**BASE, "STORAGE_URL": "nats:///audio", "NATS_URL": "nats://a:4222, tls://b:4222"}
    )
    store = storage_of(shared)
    assert isinstance(store, NatsObjectStorage)
    assert store._conn.servers == ["nats://a:4222", "tls://b:4222"]

    assert "STORAGE_URL's servers must be host:port" in problems(
        STORAGE_URL="nats://h1:4222,h2:port/audio"
    )


def test_the_bucket_signs_in_as_the_broker_does(tmp_path, operator):
    user, jwt = operator.user()
    creds = write_creds(tmp_path / "user.creds", user, jwt)
    config = Config.from_env({**BASE, "STORAGE_URL": "nats:///audio", "NATS_CREDS": str(creds)})
    store = storage_of(config)
    assert isinstance(store, NatsObjectStorage)
    assert store._conn.sign_in.creds_file == str(creds)
