"""Configuration from the environment: defaults, Heroku-style URLs, one clear error for all."""

from __future__ import annotations

import pytest

from app.config import Config, ConfigError, storage_path


def test_defaults_and_postgres_urls():
    config = Config.from_env({"DATABASE_URL": "postgres://u:p@db:5432/app"})
    assert config.database_url == "postgresql+psycopg://u:p@db:5432/app"
    assert config.nats_url == "nats://127.0.0.1:4222"
    assert config.max_upload_mb == 500 and config.worker_processes == 2
    assert config.open_access


def test_tokens_and_numbers():
    config = Config.from_env(
        {
            "DATABASE_URL": "postgresql://db/app",
            "API_TOKENS": "a, b ,,c",
            "ADMIN_TOKEN": "root",
            "MAX_UPLOAD_MB": "50",
            "LOG_LEVEL": "debug",
            "STORAGE_URL": "nats://127.0.0.1:4222/audio",
        }
    )
    assert config.api_tokens == {"a", "b", "c"} and config.admin_token == "root"
    assert config.max_upload_mb == 50 and config.log_level == "DEBUG"
    assert not config.open_access


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        Config.from_env(
            {
                "MAX_UPLOAD_MB": "lots",
                "WORKER_THREADS": "0",
                "LOG_LEVEL": "loud",
                "STORAGE_URL": "s3://bucket",
                "NATS_URL": "http://x",
            }
        )
    message = str(error.value)
    for expected in ("DATABASE_URL is not set", "MAX_UPLOAD_MB must be a whole number",
                     "WORKER_THREADS must be between", "LOG_LEVEL must be one of",
                     "STORAGE_URL must be", "NATS_URL must be"):  # fmt: skip
        assert expected in message


def test_storage_paths():
    assert str(storage_path("file:///srv/audio")) == "/srv/audio"
    assert str(storage_path("file://./var/storage")) == "var/storage"
