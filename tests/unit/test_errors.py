"""Unit tests for the exception tree in pbi_taskflow.errors."""

from __future__ import annotations

import inspect
import pickle

import pytest

from pbi_taskflow import errors


def _all_error_classes() -> list[type[errors.PowerBIError]]:
    return [
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, errors.PowerBIError)
    ]


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_details(cls: type[errors.PowerBIError]) -> None:
    """Airflow moves exceptions between processes, so each class keeps message and details through pickle."""
    exc = cls("it broke", status=400, code="InvalidRequest", request_id="req-1", workspace="W", dataset="D")
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is cls
    assert (clone.message, clone.status, clone.code, clone.request_id, clone.workspace, clone.dataset) == (
        "it broke",
        400,
        "InvalidRequest",
        "req-1",
        "W",
        "D",
    )
    assert str(clone) == str(exc)


def test_str_names_status_code_and_request_id() -> None:
    """The text a person sees carries the HTTP status, the Power BI code and the request id."""
    exc = errors.ThrottledError("Power BI throttled the call.", status=429, code="TooMany", request_id="abc", retry_after=3)
    assert str(exc) == "Power BI throttled the call. [HTTP 429, code TooMany, request id abc]"
    assert pickle.loads(pickle.dumps(exc)).retry_after == 3


def test_configuration_errors_are_value_errors() -> None:
    """Callers catching ValueError also catch bad configuration."""
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.UnknownNameError, LookupError)


def test_refresh_error_carries_results() -> None:
    """A refresh failure carries every dataset's result, so notifiers never re-query Power BI."""
    exc = errors.RefreshFailedError("1 of 2 failed", results=[{"dataset_name": "Sales", "status": "Failed"}])
    assert pickle.loads(pickle.dumps(exc)).results == [{"dataset_name": "Sales", "status": "Failed"}]
