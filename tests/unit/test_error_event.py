"""The trigger's error event names the error's class and fields as plain JSON, and the task rebuilds that error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pbi_taskflow.airflow.error_event import error_class, error_from_event, error_to_event, trigger_error
from pbi_taskflow.errors import (
    AmbiguousNameError,
    PowerBIError,
    RefreshFailedError,
    SecretExpiredError,
    ThrottledError,
)


def _round_trip(exc: PowerBIError) -> PowerBIError:
    payload = json.loads(json.dumps({"status": "error", "error": str(exc), "error_detail": error_to_event(exc)}))
    return trigger_error(payload, [])


def test_an_expired_secret_round_trips_with_its_class_and_fields() -> None:
    """SecretExpiredError survives the JSON event with its message, status, code, request id, workspace and dataset."""
    exc = SecretExpiredError("The client secret has expired.", status=401, code="AADSTS7000222", request_id="corr-1",
                             workspace="Sales", dataset="Revenue", client_id="app-id")
    back = _round_trip(exc)
    assert type(back) is SecretExpiredError
    assert (back.message, back.status, back.code, back.request_id, back.workspace, back.dataset) == (
        "The client secret has expired.", 401, "AADSTS7000222", "corr-1", "Sales", "Revenue")
    assert str(back) == str(exc)
    assert (back.client_id, back.tenant_id) == ("app-id", None)  # alerts name the app registration


def test_the_event_holds_only_the_listed_fields() -> None:
    """The event carries the class path, the six public fields and the class's own listed ones, nothing else."""
    exc = ThrottledError("Slow down.", status=429, retry_after=30)
    exc.secret = "hunter2"  # type: ignore[attr-defined]
    detail = error_to_event(exc)
    assert detail["class"] == "pbi_taskflow.errors.ThrottledError"
    assert set(detail["fields"]) == {"message", "status", "code", "request_id", "workspace", "dataset", "retry_after"}
    assert "hunter2" not in json.dumps(detail)


def test_class_specific_fields_round_trip() -> None:
    """Retry-After of a throttle and the candidates of an ambiguous name survive the event."""
    throttled = _round_trip(ThrottledError("Slow down.", status=429, retry_after=30))
    assert isinstance(throttled, ThrottledError)
    assert throttled.retry_after == 30.0
    candidates = [{"id": "ds-1", "name": "Sales", "workspace": "Finance"},
                  {"id": "ds-2", "name": "Sales", "workspace": "Finance"}]
    ambiguous = _round_trip(AmbiguousNameError("Two datasets are called Sales.", candidates=candidates))
    assert isinstance(ambiguous, AmbiguousNameError)
    assert ambiguous.candidates == candidates


def test_malformed_class_fields_are_dropped_not_trusted() -> None:
    """A non-numeric retry_after or candidates that are not a list of mappings are ignored."""
    back = error_from_event({"class": "pbi_taskflow.errors.ThrottledError",
                             "fields": {"message": "m", "retry_after": "soon"}}, "fallback")
    assert isinstance(back, ThrottledError)
    assert back.retry_after is None
    back = error_from_event({"class": "pbi_taskflow.errors.AmbiguousNameError",
                             "fields": {"message": "m", "candidates": "ds-1"}}, "fallback")
    assert isinstance(back, AmbiguousNameError)
    assert back.candidates == []


@pytest.mark.parametrize("path", [
    "os.system",
    "builtins.Exception",
    "pbi_taskflow.errors.Any",
    "pbi_taskflow.errors.NoSuchError",
    "pbi_taskflow.errors.PowerBIError.__subclasses__",
    "pbi_taskflow.airflow.trigger.PowerBIRefreshTrigger",
    "pbi_taskflow.errors",
    "",
    42,
    None,
])
def test_an_unknown_or_unsafe_class_path_falls_back_to_powerbi_error(path: Any) -> None:
    """Any path that is not an exception class of pbi_taskflow.errors gives PowerBIError, importing nothing."""
    assert error_class(path) is PowerBIError
    back = error_from_event({"class": path, "fields": {"message": "boom", "status": 500}}, "fallback")
    assert type(back) is PowerBIError
    assert (back.message, back.status) == ("boom", 500)


def test_a_malformed_detail_keeps_the_event_text() -> None:
    """A detail without usable fields still gives an error whose message is the event's text."""
    back = error_from_event({"class": "pbi_taskflow.errors.SecretExpiredError", "fields": "nope"}, "text of event")
    assert type(back) is SecretExpiredError
    assert back.message == "text of event"
    assert back.status is None


def test_a_refresh_error_gets_the_run_results() -> None:
    """A rebuilt RefreshError carries the run's results, as notifiers expect."""
    results = [{"dataset": "Revenue", "status": "Failed"}]
    payload = {"status": "error", "error": "failed", "error_detail": error_to_event(RefreshFailedError("failed"))}
    back = trigger_error(payload, results)
    assert isinstance(back, RefreshFailedError)
    assert back.results == results


def test_an_event_without_detail_gives_a_refresh_failed_error() -> None:
    """An event from an older trigger (text only) still fails as RefreshFailedError with the results."""
    back = trigger_error({"status": "error", "error": "credentials refused"}, [{"dataset": "Revenue"}])
    assert type(back) is RefreshFailedError
    assert back.message == "credentials refused"
    assert back.results == [{"dataset": "Revenue"}]
