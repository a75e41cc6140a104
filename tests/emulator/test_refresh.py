"""The emulator's refresh state machine: standard and enhanced refreshes, outcomes, cancel, limits, time scale."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator


def _history(api: Any, sales: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    answer = api.get(f"{sales['base']}/refreshes", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["value"])


def _enhanced(api: Any, sales: dict[str, str], **body: Any) -> Any:
    answer = api.post(f"{sales['base']}/refreshes", json=body or {"type": "Full"})
    assert answer.status_code == 202, answer.text
    return answer


def test_standard_post_has_the_documented_headers(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A standard POST answers 202, empty octet-stream body, RequestId exposed, no Location."""
    answer = api.post(f"{sales['base']}/refreshes", json={"notifyOption": "NoNotification"})
    assert answer.status_code == 202
    assert answer.content == b""
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Access-Control-Expose-Headers"] == "RequestId"
    assert "Location" not in answer.headers
    assert _history(api, sales)[0]["refreshType"] == "ViaApi"


def test_empty_body_is_a_standard_refresh(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A POST without a body starts a standard refresh."""
    assert api.post(f"{sales['base']}/refreshes").status_code == 202
    assert "extendedStatus" not in _history(api, sales)[0]


def test_enhanced_refresh_goes_not_started_in_progress_completed(emu: Emulator, api: Any,
                                                                 sales: dict[str, str]) -> None:
    """Enhanced: Location + x-ms-request-id, details 202 NotStarted then InProgress, then 200 Completed."""
    emu.time_scale = 0.01  # freeze-ish: the test moves the clock itself
    emu.set_refresh(sales["ds"], duration=10)
    answer = _enhanced(api, sales, type="full", commitMode="transactional", objects=[{"table": "Orders"}])
    refresh_id = answer.headers["x-ms-request-id"]
    assert answer.headers["Location"] == f"{sales['base']}/refreshes/{refresh_id}"
    assert answer.headers["RequestId"] == refresh_id
    entry = _history(api, sales)[0]
    assert (entry["refreshType"], entry["status"], entry["extendedStatus"]) == ("ViaEnhancedApi", "Unknown",
                                                                                 "NotStarted")
    details = api.get(answer.headers["Location"])
    assert details.status_code == 202
    assert (details.json()["status"], details.json()["extendedStatus"]) == ("Unknown", "NotStarted")
    emu.advance(2)
    details = api.get(answer.headers["Location"])
    assert (details.status_code, details.json()["extendedStatus"]) == (202, "InProgress")
    assert details.json()["objects"] == [{"table": "Orders", "partition": "Orders", "status": "InProgress"}]
    emu.advance(10)
    details = api.get(answer.headers["Location"])
    assert details.status_code == 200
    body = details.json()
    assert (body["status"], body["extendedStatus"], body["type"]) == ("Completed", "Completed", "Full")
    assert "endTime" in body


def test_failed_refresh_reports_service_exception_json(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A failing dataset ends Failed; history has serviceExceptionJson as a JSON string, details have messages."""
    emu.set_refresh(sales["ds"], outcome="Failed", error_code="ModelRefreshFailed_CredentialsNotSpecified",
                    error_message="Credentials are missing for the SQL source.")
    answer = _enhanced(api, sales)
    emu.advance(4.5)
    entry = _history(api, sales)[0]
    assert entry["status"] == "Failed"
    assert isinstance(entry["serviceExceptionJson"], str)
    assert json.loads(entry["serviceExceptionJson"])["errorCode"] == "ModelRefreshFailed_CredentialsNotSpecified"
    details = api.get(answer.headers["Location"]).json()
    assert (details["status"], details["extendedStatus"]) == ("Failed", "Failed")
    assert details["messages"][0]["message"] == "Credentials are missing for the SQL source."
    assert details["objects"][0]["status"] == "Failed"


@pytest.mark.parametrize(("outcome", "history_status"), [("Disabled", "Disabled"), ("Cancelled", "Cancelled"),
                                                         ("TimedOut", "Failed")])
def test_other_outcomes_map_to_history_status(emu: Emulator, api: Any, sales: dict[str, str], outcome: str,
                                              history_status: str) -> None:
    """Disabled, Cancelled and TimedOut outcomes end with the matching history status."""
    emu.set_refresh(sales["ds"], outcome=outcome)
    _enhanced(api, sales)
    emu.advance(4.5)
    entry = _history(api, sales)[0]
    assert (entry["status"], entry["extendedStatus"]) == (history_status, outcome)


def test_enhanced_timeout_ends_timed_out(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """An enhanced ``timeout`` shorter than the refresh ends it TimedOut at the timeout."""
    emu.set_refresh(sales["ds"], duration=7200)
    answer = _enhanced(api, sales, type="Full", timeout="00:00:10")
    emu.advance(11)
    details = api.get(answer.headers["Location"])
    assert details.status_code == 200
    assert (details.json()["status"], details.json()["extendedStatus"]) == ("Failed", "TimedOut")


def test_cancel_ends_the_refresh_cancelled(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """DELETE answers 200 with no body; details and history then show Cancelled/Cancelled with an end time."""
    emu.set_refresh(sales["ds"], duration=3600)
    location = _enhanced(api, sales).headers["Location"]
    deleted = api.delete(location)
    assert (deleted.status_code, deleted.content) == (200, b"")
    details = api.get(location)
    assert details.status_code == 200
    assert (details.json()["status"], details.json()["extendedStatus"]) == ("Cancelled", "Cancelled")
    entry = _history(api, sales)[0]
    assert (entry["status"], entry["extendedStatus"]) == ("Cancelled", "Cancelled")
    assert "endTime" in entry
    assert api.delete(location).status_code == 400


def test_standard_refresh_has_no_details_or_cancel(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """Details and cancel of a standard refresh id answer 404 with an error body."""
    request_id = api.post(f"{sales['base']}/refreshes").headers["RequestId"]
    for answer in (api.get(f"{sales['base']}/refreshes/{request_id}"),
                   api.delete(f"{sales['base']}/refreshes/{request_id}")):
        assert answer.status_code == 404
        assert "enhanced" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"notifyOption": "NoNotification", "type": "Full"}, id="notify-with-enhanced"),
        pytest.param({"type": "Sideways"}, id="bad-type"),
        pytest.param({"timeout": "5 hours"}, id="bad-timeout"),
        pytest.param({"objects": [{"tabel": "x"}]}, id="bad-object"),
        pytest.param({"notifyOption": "Sometimes"}, id="bad-notify"),
        pytest.param({"retries": 3}, id="unknown-field"),
    ],
)
def test_invalid_refresh_bodies_answer_400(emu: Emulator, api: Any, sales: dict[str, str], body: Any) -> None:
    """Invalid bodies (including notifyOption mixed with enhanced fields) answer 400 InvalidRequest."""
    answer = api.post(f"{sales['base']}/refreshes", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidRequest"
    assert _history(api, sales) == []


def test_second_refresh_while_running_answers_400(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """Any POST while a refresh runs (ours or a scheduled one) answers 400 "Another refresh ... executing"."""
    emu.start_external_refresh(sales["ds"], duration=600)
    for body in ({}, {"type": "Full"}):
        answer = api.post(f"{sales['base']}/refreshes", json=body)
        assert answer.status_code == 400
        assert answer.json()["error"] == {
            "code": "InvalidRequest",
            "message": "Invalid dataset refresh request. Another refresh request is already executing"}
    assert [e["refreshType"] for e in _history(api, sales)] == ["Scheduled"]


def test_shared_capacity_quota_and_enhanced_rejection(emu: Emulator, api: Any) -> None:
    """On shared capacity the 9th refresh in 24 h answers 400 (quota) and enhanced refresh is refused."""
    emu.add_workspace("Pro", dedicated=False)
    ds = emu.add_dataset("Pro", "Team Model")
    base = f"{emu.api_root}/groups/{emu.state.workspace('Pro').id}/datasets/{ds['id']}"
    enhanced = api.post(f"{base}/refreshes", json={"type": "Full"})
    assert enhanced.status_code == 400
    assert "shared capacity" in enhanced.json()["error"]["message"]
    emu.add_history(ds["id"], ago=90_000, refresh_type="ViaApi")  # older than 24 h: does not count
    emu.add_history(ds["id"], ago=600, refresh_type="OnDemand")  # portal "Refresh now": does not count
    for n in range(7):
        emu.add_history(ds["id"], ago=3600 * (n + 1), refresh_type="Scheduled")
    assert api.post(f"{base}/refreshes").status_code == 202  # the 8th
    emu.advance(1.5)
    over = api.post(f"{base}/refreshes")
    assert over.status_code == 400
    assert over.json()["error"]["message"] == ("Invalid dataset refresh request. Number of refresh requests in last "
                                               "24 hours exceeded limit")


def test_dedicated_capacity_has_no_daily_quota(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A dataset on dedicated capacity can refresh after 20 refreshes in the last day."""
    for n in range(20):
        emu.add_history(sales["ds"], ago=600 * (n + 1), refresh_type="ViaApi")
    assert api.post(f"{sales['base']}/refreshes").status_code == 202


def test_non_refreshable_dataset_answers_400(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A DirectQuery/live dataset (refreshable=False) cannot be refreshed."""
    ds = emu.add_dataset(sales["ws"], "Live", refreshable=False)
    answer = api.post(f"{emu.api_root}/groups/{sales['ws']}/datasets/{ds['id']}/refreshes")
    assert answer.status_code == 400


def test_history_top_defaults_to_60_newest_first(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """History returns the newest 60 entries by default, newest first, and honours $top."""
    for n in range(65):
        emu.add_history(sales["ds"], ago=60 * (n + 1), status="Failed" if n == 0 else "Completed")
    entries = _history(api, sales)
    assert len(entries) == 60
    starts = [e["startTime"] for e in entries]
    assert starts == sorted(starts, reverse=True)
    top = _history(api, sales, **{"$top": 3})
    assert [e["requestId"] for e in top] == [e["requestId"] for e in entries[:3]]
    assert top[0]["status"] == "Failed"
    assert "serviceExceptionJson" in top[0]


def test_time_scale_runs_the_emulated_clock_faster(emu: Emulator) -> None:
    """With time_scale=20 the emulated clock moves 20 times as far as real time, and emu.sleep() follows it."""
    emu.time_scale = 20.0
    before_emulated, before_real = emu.clock(), time.monotonic()
    time.sleep(0.1)
    emulated = (emu.clock() - before_emulated).total_seconds()
    real = time.monotonic() - before_real
    assert emulated >= 20.0 * 0.1
    assert emulated == pytest.approx(real * 20.0, rel=0.5)
    before_emulated = emu.clock()
    emu.sleep(2.0)
    assert (emu.clock() - before_emulated).total_seconds() >= 2.0


def test_refresh_runs_on_the_scaled_clock(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A 4 s emulated refresh completes after 4 emulated seconds of real waiting at time_scale=20."""
    emu.time_scale = 20.0
    assert api.post(f"{sales['base']}/refreshes").status_code == 202
    emu.sleep(4.5)
    assert _history(api, sales)[0]["status"] == "Completed"


def test_concurrent_posts_start_exactly_one_refresh(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """Ten simultaneous POSTs for one dataset: one 202, nine 400 "already executing", one history entry."""
    import concurrent.futures

    import requests

    emu.set_refresh(sales["ds"], duration=3600)
    headers = {"Authorization": api.headers["Authorization"]}

    def post(_: int) -> int:
        with requests.Session() as session:
            return session.post(f"{sales['base']}/refreshes", headers=headers, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(post, range(10)))
    assert statuses == [202] + [400] * 9
    assert len(_history(api, sales)) == 1
