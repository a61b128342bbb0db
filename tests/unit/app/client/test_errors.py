"""Each status a caller may catch on its own has its class; all are ``PhantomChainError``."""

from __future__ import annotations

import pytest

from app.client import errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.BadRequest),
        (401, errors.Unauthorized),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (413, errors.PayloadTooLarge),
        (429, errors.RateLimited),
        (503, errors.ServiceUnavailable),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (418, errors.ApiError),
    ],
)
def test_the_class_of_each_status(status, kind):
    error = errors.api_error(status, "some_code", "a sentence", 3.0)
    assert type(error) is kind
    assert isinstance(error, errors.PhantomChainError)
    assert (error.status, error.code, error.message, error.retry_after) == (
        status,
        "some_code",
        "a sentence",
        3.0,
    )
    assert str(error) == f"{status} some_code: a sentence"
