"""Unit tests for request building, error decoding and response parsing in pbi_taskflow.client.api."""

from __future__ import annotations

import json
import pickle

import pytest

from pbi_taskflow.client import api
from pbi_taskflow.client.clouds import get_cloud
from pbi_taskflow.client.models import Handle, HistoryEntry, RefreshOptions, RefreshStatus
from pbi_taskflow.errors import (
    EnhancedRefreshNotSupportedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RefreshAlreadyRunningError,
    RefreshQuotaExceededError,
    ServerError,
    ThrottledError,
    TokenExpiredError,
)

WS = "11111111-1111-1111-1111-111111111111"
DS = "22222222-2222-2222-2222-222222222222"


def _err(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        pytest.param(
            400,
            _err("InvalidRequest", "Invalid dataset refresh request. Another refresh request is already executing"),
            {},
            RefreshAlreadyRunningError,
            id="already-running",
        ),
        pytest.param(
            400,
            _err("InvalidRequest", "Invalid dataset refresh request. Number of refresh requests in last 24 hours exceeded limit"),
            {},
            RefreshQuotaExceededError,
            id="quota",
        ),
        pytest.param(
            400,
            _err("InvalidRequest", "Enhanced refresh is not supported for datasets in workspace 'X'"),
            {},
            EnhancedRefreshNotSupportedError,
            id="enhanced-on-shared",
        ),
        pytest.param(400, _err("InvalidRequest", "Bad body"), {}, InvalidRequestError, id="invalid"),
        pytest.param(403, _err("TokenExpired", "Access token has expired"), {}, TokenExpiredError, id="token-expired"),
        pytest.param(401, _err("PowerBINotAuthorizedException", ""), {}, PermissionDeniedError, id="401"),
        pytest.param(403, {"Message": "API is not accessible for application"}, {}, PermissionDeniedError, id="403"),
        pytest.param(404, _err("ItemNotFound", "Dataset x is not found"), {}, NotFoundError, id="404"),
        pytest.param(429, {"message": "Retry in 7 seconds."}, {"Retry-After": "7"}, ThrottledError, id="429"),
        pytest.param(503, "Service Unavailable", {}, ServerError, id="503"),
    ],
)
def test_raise_for_response_maps_status_and_text(status, body, headers, expected):
    """Each Power BI error answer becomes its own exception type."""
    headers = {**headers, "RequestId": "req-1"}
    with pytest.raises(expected) as info:
        api.raise_for_response(status, headers, body, workspace="Sales", dataset="Revenue", operation="trigger refresh")
    assert type(info.value) is expected
    assert info.value.status == status
    assert info.value.request_id == "req-1"


def test_error_message_names_operation_workspace_dataset_status_code_and_request_id():
    """The message carries everything a person needs to act."""
    with pytest.raises(NotFoundError) as info:
        api.raise_for_response(
            404, {"requestid": "abc-123"}, _err("ItemNotFound", "gone"), workspace="Sales", dataset="Revenue",
            operation="get dataset",
        )
    text = str(info.value)
    for part in ("get dataset", "'Sales'", "'Revenue'", "HTTP 404", "ItemNotFound", "abc-123", "member"):
        assert part in text
    assert pickle.loads(pickle.dumps(info.value)).request_id == "abc-123"


def test_throttled_error_carries_retry_after():
    """A 429 keeps the Retry-After seconds."""
    with pytest.raises(ThrottledError) as info:
        api.raise_for_response(429, {"Retry-After": "12"}, None)
    assert info.value.retry_after == 12.0


def test_timestamps_from_history_and_details_share_one_utc_format():
    """Standard ('…Z') and enhanced (no zone) timestamps become the same ISO 8601 UTC form with an offset."""
    [entry] = api.parse_history({"value": [{"requestId": "r", "status": "Completed",
                                            "startTime": "2026-11-27T20:07:29.417Z", "endTime": "2026-11-27T20:07:41Z"}]})
    state = api.parse_details({"status": "Completed", "startTime": "2026-11-27T20:07:29.439",
                               "endTime": "2026-11-27T21:07:41.4481234+01:00"})
    assert (entry.start, entry.end) == ("2026-11-27T20:07:29.417000+00:00", "2026-11-27T20:07:41.000000+00:00")
    assert (state.start, state.end) == ("2026-11-27T20:07:29.439000+00:00", "2026-11-27T20:07:41.448123+00:00")
    handle = Handle("w", "W", "d", "D", "r", "enhanced", "2026-11-27T20:07:29+00:00")
    raw = api.state_from_entry(entry).__class__(RefreshStatus.COMPLETED, start="2026-11-27T20:07:29.4Z", end=None)
    result = api.result_from(handle, raw)
    assert (result.start, result.end) == ("2026-11-27T20:07:29.400000+00:00", None)
    assert api.iso_utc("not a time") == "not a time"


def test_message_ending_in_a_full_stop_gets_only_one():
    """Power BI's own text already ending in '.' is not followed by a second full stop."""
    body = {"error": {"code": "TooManyRequests", "message": "Retry in 1 seconds."}}
    with pytest.raises(ThrottledError) as info:
        api.raise_for_response(429, {"Retry-After": "1"}, body, operation="trigger refresh")
    assert ".." not in str(info.value)
    assert "Retry in 1 seconds. Power BI is throttling requests." in str(info.value)


def test_permission_error_points_at_tenant_setting():
    """401/403 messages name the tenant setting and workspace membership."""
    with pytest.raises(PermissionDeniedError) as info:
        api.raise_for_response(401, {}, _err("PowerBINotAuthorizedException", ""))
    assert "Service principals can call Fabric public APIs" in str(info.value)
    assert "Member" in str(info.value)


def test_success_statuses_do_not_raise():
    """2xx answers pass."""
    api.raise_for_response(202, {}, None)


def test_list_groups_filters_by_exact_name_with_doubled_quotes():
    """Exact-name lookups use $filter name eq with OData quoting."""
    req = api.list_groups(name="Bob's ws", top=5)
    assert req.params == {"$filter": "name eq 'Bob''s ws'", "$top": "5"}
    assert req.method == "GET"
    assert req.idempotent


def test_trigger_request_is_not_idempotent_and_carries_body():
    """The refresh POST is marked non-idempotent and carries the typed body."""
    req = api.trigger_refresh(WS, DS, RefreshOptions(type="Full"))
    assert req.method == "POST"
    assert not req.idempotent
    assert req.path == f"/groups/{WS}/datasets/{DS}/refreshes"
    assert req.json == {"type": "Full"}
    assert api.trigger_refresh(WS, DS, RefreshOptions()).json == {"notifyOption": "NoNotification"}


def test_refresh_id_enhanced_prefers_location_last_segment():
    """Enhanced refresh ids come from Location, else x-ms-request-id."""
    headers = {"Location": f"https://x/v1.0/myorg/groups/{WS}/datasets/{DS}/refreshes/abc", "x-ms-request-id": "zzz"}
    assert api.refresh_id_from_trigger(headers, enhanced=True) == "abc"
    assert api.refresh_id_from_trigger({"x-ms-request-id": "zzz"}, enhanced=True) == "zzz"


def test_refresh_id_standard_uses_request_id_header():
    """Standard refresh ids come from the RequestId header."""
    assert api.refresh_id_from_trigger({"requestid": "R-1"}, enhanced=False) == "R-1"


def test_history_parses_service_exception_json_string():
    """serviceExceptionJson (a JSON string) is parsed into code and message."""
    body = {
        "value": [
            {
                "requestId": "AA",
                "refreshType": "ViaApi",
                "status": "Failed",
                "startTime": "2026-01-01T00:00:00Z",
                "endTime": "2026-01-01T00:01:00Z",
                "serviceExceptionJson": json.dumps({"errorCode": "ModelRefreshFailed", "errorDescription": "no creds"}),
            }
        ]
    }
    [entry] = api.parse_history(body)
    assert entry.status is RefreshStatus.FAILED
    assert (entry.error_code, entry.error_message) == ("ModelRefreshFailed", "no creds")
    assert entry.duration_s == 60.0


@pytest.mark.parametrize(
    ("status", "extended", "expected"),
    [
        ("Unknown", None, RefreshStatus.UNKNOWN),
        ("Unknown", "NotStarted", RefreshStatus.NOT_STARTED),
        ("Unknown", "InProgress", RefreshStatus.IN_PROGRESS),
        ("Failed", "TimedOut", RefreshStatus.TIMED_OUT),
        ("Cancelled", "Cancelled", RefreshStatus.CANCELLED),
        ("completed", None, RefreshStatus.COMPLETED),
    ],
)
def test_combine_status_prefers_precise_extended_status(status, extended, expected):
    """history status + extendedStatus map onto one RefreshStatus."""
    assert api.combine_status(status, extended) is expected


def test_details_keep_object_errors_and_messages():
    """Per-object failures and engine messages survive parsing."""
    body = {
        "status": "Failed",
        "extendedStatus": "Failed",
        "startTime": "2021-12-10T08:40:31.57",
        "endTime": "2021-12-10T08:41:31.57",
        "objects": [{"table": "Sales", "partition": "P1", "status": "Failed"}, {"table": "Dim", "status": "Completed"}],
        "messages": [{"code": "0xC11C0020", "message": "evicted", "type": "Error"}],
        "refreshAttempts": [
            {"serviceExceptionJson": json.dumps({"errorCode": "ModelRefresh_ShortMessage_ProcessingError", "errorDescription": "boom"})}
        ],
    }
    state = api.parse_details(body)
    assert state.status is RefreshStatus.FAILED
    assert state.error_code == "ModelRefresh_ShortMessage_ProcessingError"
    assert {"table": "Sales", "partition": "P1", "status": "Failed"} in state.object_errors
    assert {"code": "0xC11C0020", "message": "evicted", "type": "Error"} in state.object_errors


def test_find_entry_matches_request_id_case_insensitively():
    """Standard refreshes are matched on requestId, ignoring case, never on position."""
    entries = [
        HistoryEntry("zzz", "Scheduled", RefreshStatus.UNKNOWN),
        HistoryEntry("ABC-def", "ViaApi", RefreshStatus.COMPLETED),
    ]
    assert api.find_entry(entries, "abc-DEF") is entries[1]
    assert api.find_entry(entries, "nope") is None


def test_result_from_computes_duration_and_link():
    """result_from fills duration and the portal link."""
    handle = Handle(WS, "Sales", DS, "Revenue", "r1", "standard", "2026-01-01T00:00:00+00:00")
    state = api.state_from_entry(
        HistoryEntry("r1", "ViaApi", RefreshStatus.COMPLETED, start="2026-01-01T00:00:00Z", end="2026-01-01T00:00:10Z")
    )
    result = api.result_from(handle, state, get_cloud("public"))
    assert result.duration_s == 10.0
    assert result.web_url == f"https://app.powerbi.com/groups/{WS}/datasets/{DS}/details"


def test_parse_retry_after_accepts_seconds_and_dates():
    """Retry-After as seconds or an HTTP date."""
    assert api.parse_retry_after("3") == 3.0
    assert api.parse_retry_after(None) is None
    assert api.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_details_match_compares_type_and_objects():
    """An enhanced refresh matches when its type and tables/partitions are those requested."""
    body = {"type": "Full", "objects": [{"table": "Sales", "partition": "2026"}, {"table": "Dim"}]}
    assert api.details_match(RefreshOptions(type="Full", objects=("Sales",)), body)
    assert api.details_match(RefreshOptions(objects=(("Sales", "2026"),)), body)
    assert not api.details_match(RefreshOptions(type="Calculate"), body)
    assert not api.details_match(RefreshOptions(objects=("Costs",)), body)
    assert api.details_match(RefreshOptions(type="Full", objects=("Costs",)), {"type": "full"})
