"""Configuration from the environment: defaults, Heroku-style URLs, one clear error for all."""

from __future__ import annotations

import re

import pytest

from app.config import (
    Config,
    ConfigError,
    bare_token_tenant,
    cli_environment,
    storage_path,
    write_dev_env,
)


def test_defaults_and_postgres_urls():
    config = Config.from_env({"DATABASE_URL": "postgres://u:p@db:5432/app"})
    assert config.database_url == "postgresql+psycopg://u:p@db:5432/app"
    assert config.nats_url == "nats://127.0.0.1:4222"
    assert config.max_upload_mb == 500 and config.worker_processes == 2
    assert config.nats_replicas == 1  # a single server: JetStream refuses more without a cluster
    assert config.open_access


def test_tokens_and_numbers():
    config = Config.from_env(
        {
            "DATABASE_URL": "postgresql://db/app",
            "API_TOKENS": "a, label:b ,,c",
            "ADMIN_TOKEN": "root",
            "MAX_UPLOAD_MB": "50",
            "LOG_LEVEL": "debug",
            "STORAGE_URL": "nats://127.0.0.1:4222/audio",
            "NATS_REPLICAS": "3",
        }
    )
    assert config.api_tokens == {
        "a": bare_token_tenant("a"),
        "b": "label",
        "c": bare_token_tenant("c"),
    }
    assert bare_token_tenant("a") != bare_token_tenant("c")
    assert config.admin_token == "root"
    assert config.max_upload_mb == 50 and config.log_level == "DEBUG"
    assert config.nats_replicas == 3
    assert not config.open_access


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        Config.from_env(
            {
                "MAX_UPLOAD_MB": "lots",
                "WORKER_THREADS": "0",
                "LOG_LEVEL": "loud",
                "STORAGE_URL": "ftp://bucket",
                "NATS_URL": "http://x",
                "WEBHOOK_SECRET": "hunter2",
                "WEBHOOK_ALLOW_PRIVATE": "sometimes",
                "NATS_REPLICAS": "6",
                "API_TOKENS": "ok:fine,bad name:tok,t:caf\u00e9,again:fine",
                "ADMIN_TOKEN": "caf\u00e9",
                "MAX_DURATION_S": "0",
                "UPLOADS_PER_HOUR": "-1",
            }
        )
    message = str(error.value)
    for expected in (
        "DATABASE_URL is not set",
        "MAX_UPLOAD_MB must be a whole number",
        "API_TOKENS tenant names may hold only",
        "printable ASCII token",
        "API_TOKENS names the same token twice",
        "ADMIN_TOKEN must be printable ASCII",
        "MAX_DURATION_S must be between",
        "UPLOADS_PER_HOUR must be between",
        "WORKER_THREADS must be between",
        "LOG_LEVEL must be one of",
        "STORAGE_URL must be",
        "NATS_URL must be",
        "NATS_REPLICAS must be between 1 and 5",
        "WEBHOOK_SECRET must be whsec_",
        "WEBHOOK_ALLOW_PRIVATE must be 1 or 0",
    ):
        assert expected in message


def test_a_nats_url_of_another_scheme_is_refused_without_its_password():
    with pytest.raises(ConfigError) as error:
        Config.from_env(
            {"DATABASE_URL": "postgres://x/y", "NATS_URL": "natz://bob:hunter2@h:4222,nats://h:2"}
        )
    assert "got 'natz://***@h:4222'" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_an_s3_url_is_checked_with_the_rest_and_its_secret_not_shown():
    bad = "s3://Bad_Bucket/p?colour=1&secret_access_key=hunter2"
    with pytest.raises(ConfigError) as error:
        Config.from_env({"DATABASE_URL": "postgres://x/y", "LOG_LEVEL": "loud", "STORAGE_URL": bad})
    message = str(error.value)
    assert "invalid S3 bucket name 'Bad_Bucket'" in message
    assert "unknown parameter 'colour'" in message
    assert "LOG_LEVEL must be one of" in message and "hunter2" not in message
    for url, says in [
        ("s3://b1/p?endpoint_url=http://[::1", "endpoint_url must be http(s)://host[:port]"),
        ("s3://user:SECRETPW@bucket/p", "credentials go in the query"),
        ("s3://bucket/p#frag", "no #fragment"),
        ("s3://[::1", "STORAGE_URL must be"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(says)) as error:
            Config.from_env({"DATABASE_URL": "postgres://x/y", "STORAGE_URL": url})
        assert "SECRETPW" not in str(error.value)
    good = "s3://media/phantomchain?endpoint_url=http://minio:9000&path_style=1&region=eu-west-1"
    settings = {"DATABASE_URL": "postgres://x/y", "STORAGE_URL": good}
    assert Config.from_env(settings).storage_url == good


def test_nats_replicas_is_one_to_five():
    for value, replicas in (("1", 1), ("5", 5), (" 3 ", 3), ("", 1)):
        config = Config.from_env({"DATABASE_URL": "postgresql://db/app", "NATS_REPLICAS": value})
        assert config.nats_replicas == replicas
    for value in ("0", "6", "three", "-1"):
        with pytest.raises(ConfigError) as error:
            Config.from_env({"DATABASE_URL": "postgresql://db/app", "NATS_REPLICAS": value})
        lines = str(error.value).splitlines()
        assert len(lines) == 2 and lines[1].startswith("  - NATS_REPLICAS must be"), lines


def test_storage_paths():
    assert str(storage_path("file:///srv/audio")) == "/srv/audio"
    assert str(storage_path("file://./var/storage")) == "var/storage"


def test_web_settings_are_checked_with_the_rest():
    config = Config.from_env(
        {
            "DATABASE_URL": "postgresql://db/app",
            "PORT": "5000",
            "WEB_THREADS": "8",
            "WEB_CONNECTION_LIMIT": "200",
            "READ_TIMEOUT_S": "7",
            "METRICS_PORT": "0",
            "EVENT_STREAM_MAX_S": "60",
            "EVENT_STREAMS_PER_TENANT": "3",
            "GRACEFUL_TIMEOUT": "12",
            "WORKER_METRICS_PORT": "0",
        }
    )
    assert (config.port, config.web_threads, config.web_connection_limit) == (5000, 8, 200)
    assert (config.read_timeout_s, config.metrics_port) == (7, 0)
    assert (config.event_stream_max_s, config.event_streams_per_tenant) == (60, 3)
    assert config.graceful_timeout == 12 and config.worker_metrics_port == 0
    bad = {
        "PORT": "http",
        "WEB_THREADS": "many",
        "WEB_CONNECTION_LIMIT": "0",
        "READ_TIMEOUT_S": "0",
        "METRICS_PORT": "70000",
        "EVENT_STREAM_MAX_S": "forever",
        "EVENT_STREAMS_PER_TENANT": "0",
        "GRACEFUL_TIMEOUT": "-1",
        "WORKER_METRICS_PORT": "70000",
    }
    with pytest.raises(ConfigError) as error:
        Config.from_env({"DATABASE_URL": "postgresql://db/app", **bad})
    lines = str(error.value).splitlines()
    assert lines[0] == "invalid configuration:"
    for name in bad:
        assert sum(line.startswith(f"  - {name} must be") for line in lines) == 1, name


def test_the_cli_finds_a_running_dev_stack_unless_told_otherwise(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "NATS_URL", "STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    dev_env = tmp_path / "var" / "dev.env"
    assert cli_environment(dev_env).get("DATABASE_URL") is None  # no stack: nothing invented
    write_dev_env(
        dev_env,
        {
            "DATABASE_URL": "postgresql://dev/db",
            "NATS_URL": "nats://h:1",
            "STORAGE_URL": "file:///srv",
            "ADMIN_TOKEN": "secret",
        },
    )
    assert "secret" not in dev_env.read_text()  # only the addresses the CLI needs
    config = Config.from_env(cli_environment(dev_env))
    assert config.database_url == "postgresql+psycopg://dev/db"
    assert (config.nats_url, config.storage_url) == ("nats://h:1", "file:///srv")
    monkeypatch.setenv("NATS_URL", "nats://mine:4222")  # the operator's own setting wins
    assert Config.from_env(cli_environment(dev_env)).nats_url == "nats://mine:4222"


@pytest.mark.parametrize("value", [",", " , ,"])
def test_api_tokens_set_to_nothing_is_an_error_not_an_open_api(value):
    """``API_TOKENS=$A,$B`` with both unset must not start an API open to everyone."""
    with pytest.raises(ConfigError, match="API_TOKENS is set but holds no token"):
        Config.from_env({"DATABASE_URL": "postgresql://db/app", "API_TOKENS": value})


def test_no_user_tenant_can_take_an_internal_tenants_name():
    """Internal tenants (the admin token's, the open API's, rows from before tenants, bare
    tokens') start with ``@``, which a tenant name in the settings cannot hold."""
    with pytest.raises(ConfigError, match="tenant names may hold only"):
        Config.from_env({"DATABASE_URL": "postgresql://db/app", "API_TOKENS": "@admin:x"})
    config = Config.from_env({"DATABASE_URL": "postgresql://db/app", "API_TOKENS": "admin:x"})
    assert config.api_tokens == {"x": "admin"} and bare_token_tenant("x").startswith("@")


def test_encode_thread_is_auto_on_or_off_and_auto_leaves_a_core(monkeypatch):
    base = {"DATABASE_URL": "postgresql://u@h/d"}
    with pytest.raises(ConfigError, match="ENCODE_THREAD must be auto, on or off, got 'two'"):
        Config.from_env({**base, "ENCODE_THREAD": "two"})
    assert Config.from_env({**base, "ENCODE_THREAD": "on"}).encode_on_own_thread
    assert not Config.from_env({**base, "ENCODE_THREAD": "OFF"}).encode_on_own_thread
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    spare = Config.from_env({**base, "WORKER_PROCESSES": "3"})
    full = Config.from_env({**base, "WORKER_PROCESSES": "2", "WORKER_THREADS": "2"})
    assert spare.encode_thread == "auto" and spare.encode_on_own_thread
    assert not full.encode_on_own_thread
