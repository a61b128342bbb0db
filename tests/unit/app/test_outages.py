"""The one outage rule: which errors mean a server is away, and which server."""

from __future__ import annotations

import nats.errors
import pytest
from dramatiq.errors import BrokerConnectionError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import outages
from app.storage import StorageError, StorageUnavailable
from app.storage.local import LocalStorage


def _dbapi(invalidated: bool) -> DBAPIError:
    return DBAPIError(
        "SELECT 1",
        None,
        Exception("server closed the connection"),
        connection_invalidated=invalidated,
    )


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (OperationalError("SELECT 1", None, Exception("connection refused")), outages.DATABASE),
        (PoolTimeout("QueuePool limit reached"), outages.DATABASE),
        (_dbapi(invalidated=True), outages.DATABASE),
        (BrokerConnectionError("no servers"), outages.QUEUE),
        (nats.errors.NoServersError(), outages.QUEUE),
        (StorageUnavailable("S3 at http://s3: connect timeout"), outages.STORAGE),
        (_dbapi(invalidated=False), None),
        (IntegrityError("INSERT", None, Exception("duplicate key")), None),
        (StorageError("no object 'a'"), None),
        (OSError("disk on fire"), None),  # only a backend can say the disk is its storage
        (ValueError("bad input"), None),
    ],
)
def test_which_errors_mean_a_server_is_away(error, outage):
    assert outages.outage_of(error) is outage
    assert outages.is_outage(error) is (outage is not None)
    if outage is not None:
        assert isinstance(error, outages.KINDS)  # the API registers a handler for it


def test_the_driver_detail_is_one_line():
    error = OperationalError("SELECT 1", None, Exception("could not connect\n\tis it up?"))
    assert outages.detail(error) == "could not connect is it up?"


def test_a_failing_disk_is_storage_unavailable_and_a_missing_file_is_not(tmp_path):
    store = LocalStorage(tmp_path / "storage")
    store.save("uploads/a/original.mp3", [b"abc"])
    (tmp_path / "storage" / "outputs").write_text("a file where a folder should be")
    with pytest.raises(StorageUnavailable):
        store.save("outputs/a/out.mp3", [b"abc"])
    with pytest.raises(StorageError):
        next(store.read_chunks("uploads/b/original.mp3"))
    assert store.presigned_url("uploads/a/original.mp3") is None
