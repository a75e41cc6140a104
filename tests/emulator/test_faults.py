"""Fault injection: throttling, errors, dropped connections, slow answers and expired tokens, per endpoint."""

from __future__ import annotations

import threading
from typing import Any

import msal
import pytest
import requests

from pbi_taskflow.emulator import Emulator

from .helpers import msal_app


def test_throttle_answers_429_with_retry_after_then_recovers(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """``throttle`` answers the next N calls 429 with Retry-After and the service's message, then normal answers."""
    emu.inject("history", "throttle", count=2, retry_after=7)
    url = f"{sales['base']}/refreshes"
    for _ in range(2):
        answer = api.get(url)
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "7"
        assert answer.headers["RequestId"]
        assert "Retry in 7 seconds" in answer.json()["message"]
    assert api.get(url).status_code == 200
    assert [r.fault for r in emu.requests if r.endpoint == "history"] == ["throttle", "throttle", None]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_error_answers_the_given_status(emu: Emulator, api: Any, sales: dict[str, str], status: int) -> None:
    """``error`` answers the given 5xx status with a Power BI error body, once."""
    emu.inject("dataset", "error", status=status)
    failed = api.get(sales["base"])
    assert failed.status_code == status
    assert failed.json()["error"]["code"]
    assert api.get(sales["base"]).status_code == 200


def test_drop_closes_the_connection_without_starting_the_refresh(emu: Emulator, api: Any,
                                                                 sales: dict[str, str]) -> None:
    """``drop`` on refresh_post closes the connection unanswered and starts nothing."""
    emu.inject("refresh_post", "drop")
    with pytest.raises(requests.ConnectionError):
        api.post(f"{sales['base']}/refreshes")
    assert api.get(f"{sales['base']}/refreshes").json()["value"] == []
    assert [r.status for r in emu.requests if r.endpoint == "refresh_post"] == [None]


def test_drop_after_starts_the_refresh_then_closes_the_connection(emu: Emulator, api: Any,
                                                                  sales: dict[str, str]) -> None:
    """``drop_after`` on refresh_post starts the refresh, then drops the answer (an ambiguous failure)."""
    emu.inject("refresh_post", "drop_after")
    with pytest.raises(requests.ConnectionError):
        api.post(f"{sales['base']}/refreshes")
    history = api.get(f"{sales['base']}/refreshes").json()["value"]
    assert [e["status"] for e in history] == ["Unknown"]
    assert api.post(f"{sales['base']}/refreshes").status_code == 400  # already executing


def test_slow_delays_the_answer(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """``slow`` holds the answer for ``delay`` seconds: a shorter client read timeout expires."""
    emu.inject("datasets", "slow", delay=1.0)
    with pytest.raises(requests.ReadTimeout):
        api.get(f"{emu.api_root}/groups/{sales['ws']}/datasets", timeout=(5, 0.2))
    assert api.get(f"{emu.api_root}/groups/{sales['ws']}/datasets", timeout=5).status_code == 200


def test_expired_token_fault_answers_403_token_expired_once(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """``expired_token`` answers 403 TokenExpired for the next call only."""
    emu.inject("details", "expired_token")
    location = api.post(f"{sales['base']}/refreshes", json={"type": "Full"}).headers["Location"]
    expired = api.get(location)
    assert expired.status_code == 403
    assert expired.json()["error"]["code"] == "TokenExpired"
    assert api.get(location).status_code in (200, 202)


def test_wildcard_fault_hits_the_next_call_whatever_the_endpoint(emu: Emulator, api: Any) -> None:
    """A ``*`` fault applies to the next request on any endpoint."""
    emu.inject("*", "error", status=500)
    assert api.get(f"{emu.api_root}/groups").status_code == 500
    assert api.get(f"{emu.api_root}/groups").status_code == 200


def test_token_endpoint_faults_reach_msal(emu: Emulator) -> None:
    """A throttled token endpoint gives MSAL a 429 error dict; a 503 makes MSAL raise."""
    emu.inject("token", "throttle", retry_after=1)
    result = msal_app(emu).acquire_token_for_client([emu.scope])
    assert result["error"] == "temporarily_unavailable"
    emu.inject("token", "error", status=503)
    with pytest.raises(msal.exceptions.MsalServiceError):
        msal_app(emu).acquire_token_for_client([emu.scope])
    assert [r.status for r in emu.requests if r.endpoint == "token"] == [429, 503]


def test_discovery_fault_fails_msal_construction(emu: Emulator) -> None:
    """An error on discovery makes the MSAL constructor fail (it fetches discovery eagerly)."""
    emu.inject("discovery", "error", status=503)
    with pytest.raises((ValueError, msal.exceptions.MsalServiceError)):
        msal_app(emu)
    assert emu.count("discovery") == 1


def test_inject_rejects_unknown_endpoints_and_faults(emu: Emulator) -> None:
    """inject() names the valid endpoints and faults when given an unknown one."""
    with pytest.raises(ValueError, match="refresh_post"):
        emu.inject("refresh", "throttle")
    with pytest.raises(ValueError, match="drop_after"):
        emu.inject("history", "explode")


def test_stop_returns_while_a_slow_answer_is_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """stop() does not wait for a request held by a ``slow`` fault."""
    emu = Emulator().start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
    emu.inject("*", "slow", delay=60)
    url, outcome = f"{emu.url}/v1.0/myorg/groups", []

    def call() -> None:
        try:
            outcome.append(requests.get(url, timeout=90).status_code)
        except requests.ConnectionError:
            outcome.append("dropped")

    client = threading.Thread(target=call, daemon=True)
    client.start()
    for _ in range(500):  # bounded: wait until the request holds the slow fault
        if not emu.faults.pending():
            break
        threading.Event().wait(0.02)
    stopper = threading.Thread(target=emu.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=15)
    assert not stopper.is_alive()
    assert not emu.running
    client.join(timeout=15)
    assert outcome == ["dropped"]


def test_lost_refresh_answers_202_but_never_appears(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """``lost`` on refresh_post answers 202 with ids, yet no history entry or details ever exist."""
    emu.inject("refresh_post", "lost", count=2)
    standard = api.post(f"{sales['base']}/refreshes")
    enhanced = api.post(f"{sales['base']}/refreshes", json={"type": "Full"})
    assert (standard.status_code, enhanced.status_code) == (202, 202)
    assert standard.headers["RequestId"]
    assert api.get(f"{sales['base']}/refreshes").json()["value"] == []
    assert api.get(enhanced.headers["Location"]).status_code == 404


def test_error_401_is_power_bi_not_authorized(emu: Emulator, api: Any) -> None:
    """An ``error`` fault with status 401 answers the service's PowerBINotAuthorizedException body."""
    emu.inject("groups", "error", status=401)
    answer = api.get(f"{emu.api_root}/groups")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "PowerBINotAuthorizedException"


def test_wildcard_power_bi_only_faults_skip_entra(emu: Emulator, sales: dict[str, str]) -> None:
    """A ``*`` expired_token fault waits for a Power BI call: discovery and token requests are not consumed by it."""
    emu.inject("*", "expired_token")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {msal_app(emu).acquire_token_for_client([emu.scope])['access_token']}"
    answer = session.get(f"{emu.api_root}/groups")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "TokenExpired"
    assert session.get(f"{emu.api_root}/groups").status_code == 200


@pytest.mark.parametrize(("endpoint", "fault"), [("token", "expired_token"), ("discovery", "expired_token"),
                                                 ("history", "lost")])
def test_faults_that_cannot_apply_to_the_endpoint_are_rejected(emu: Emulator, endpoint: str, fault: str) -> None:
    """Injecting a fault on an endpoint it cannot apply to fails at once, naming the endpoints it applies to."""
    with pytest.raises(ValueError, match=f"{fault!r} applies only to"):
        emu.inject(endpoint, fault)


def test_history_lag_hides_a_new_refresh_from_the_history_for_a_while(emu: Emulator, api: Any,
                                                                      sales: dict[str, str]) -> None:
    """``history_lag`` lists a new refresh only N emulated seconds after its start; it still blocks another POST."""
    emu.set_refresh(sales["ds"], duration=60, history_lag=30)
    started = api.post(f"{sales['base']}/refreshes")
    assert started.status_code == 202
    assert api.get(f"{sales['base']}/refreshes").json()["value"] == []
    again = api.post(f"{sales['base']}/refreshes")
    assert again.status_code == 400
    assert "already executing" in again.json()["error"]["message"]
    emu.advance(31)
    [entry] = api.get(f"{sales['base']}/refreshes").json()["value"]
    assert (entry["requestId"], entry["status"]) == (started.headers["RequestId"], "Unknown")


def test_details_lag_answers_404_item_not_found_right_after_the_start(emu: Emulator, api: Any,
                                                                      sales: dict[str, str]) -> None:
    """``details_lag``: an enhanced refresh's execution details answer 404 ItemNotFound for N emulated seconds."""
    emu.set_refresh(sales["ds"], duration=60, details_lag=10)
    location = api.post(f"{sales['base']}/refreshes", json={"type": "Full"}).headers["Location"]
    missing = api.get(location)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ItemNotFound"
    assert [e["status"] for e in api.get(f"{sales['base']}/refreshes").json()["value"]] == ["Unknown"]
    emu.advance(11)
    assert api.get(location).status_code == 202


@pytest.mark.parametrize(("endpoint", "status", "code"), [("details", 403, "Forbidden"),
                                                          ("history", 403, "Forbidden"),
                                                          ("details", 401, "PowerBINotAuthorizedException"),
                                                          ("history", 401, "PowerBINotAuthorizedException")])
def test_status_reads_answer_401_or_403_with_a_valid_token(emu: Emulator, api: Any, sales: dict[str, str],
                                                           endpoint: str, status: int, code: str) -> None:
    """An ``error`` fault of 401/403 on a status read answers Power BI's body although the token is valid."""
    location = api.post(f"{sales['base']}/refreshes", json={"type": "Full"}).headers["Location"]
    url = location if endpoint == "details" else f"{sales['base']}/refreshes"
    emu.inject(endpoint, "error", status=status, count=2)
    for _ in range(2):
        denied = api.get(url)
        assert denied.status_code == status
        assert denied.json()["error"]["code"] == code
    assert api.get(url).status_code in (200, 202)


@pytest.mark.parametrize("refresh_type", ["Scheduled", "ViaApi"])
def test_race_starts_a_foreign_refresh_just_before_the_post(emu: Emulator, api: Any, sales: dict[str, str],
                                                            refresh_type: str) -> None:
    """``race``: a refresh nobody asked for starts just before the POST, which gets "already executing"."""
    emu.inject("refresh_post", "race", refresh_type=refresh_type, duration=100)
    answer = api.post(f"{sales['base']}/refreshes")
    assert answer.status_code == 400
    assert "Another refresh request is already executing" in answer.json()["error"]["message"]
    [entry] = api.get(f"{sales['base']}/refreshes").json()["value"]
    assert (entry["refreshType"], entry["status"]) == (refresh_type, "Unknown")
    [run] = emu.state.dataset(sales["ds"]).runs
    assert run.caller is None
    assert run.duration == 100
    assert [r.fault for r in emu.requests if r.endpoint == "refresh_post"] == ["race"]


def test_race_drop_loses_the_post_while_a_foreign_refresh_starts(emu: Emulator, api: Any,
                                                                 sales: dict[str, str]) -> None:
    """``race_drop``: the POST is dropped unanswered and starts nothing; the history shows someone else's refresh."""
    emu.inject("refresh_post", "race_drop", refresh_type="ViaApi")
    with pytest.raises(requests.ConnectionError):
        api.post(f"{sales['base']}/refreshes")
    [entry] = api.get(f"{sales['base']}/refreshes").json()["value"]
    assert entry["refreshType"] == "ViaApi"
    [record] = [r for r in emu.requests if r.endpoint == "refresh_post"]
    assert record.status is None
    assert entry["requestId"] != record.request_id
    assert emu.state.dataset(sales["ds"]).runs[0].caller is None


def test_a_fault_for_one_dataset_spares_the_others(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """``inject(..., dataset=name or id)`` applies only to calls about that dataset."""
    other = emu.add_dataset(sales["ws"], "Finance", duration=1)
    other_base = f"{emu.api_root}/groups/{sales['ws']}/datasets/{other['id']}"
    emu.inject("refresh_post", "throttle", dataset="Sales", retry_after=3)
    emu.inject("*", "error", status=500, dataset=other["id"])
    assert api.get(f"{emu.api_root}/groups").status_code == 200  # not about a dataset: spared by both
    assert api.post(f"{sales['base']}/refreshes").status_code == 429
    assert api.post(f"{sales['base']}/refreshes").status_code == 202
    assert api.get(f"{other_base}/refreshes").status_code == 500
    assert api.post(f"{other_base}/refreshes").status_code == 202
    with pytest.raises(ValueError, match="about a dataset"):
        emu.inject("groups", "error", dataset="Sales")
    with pytest.raises(ValueError, match="No emulated dataset"):
        emu.inject("history", "error", dataset="Nope")


def test_the_request_log_keeps_bodies_without_secrets_and_the_caller(emu: Emulator, api: Any,
                                                                      sales: dict[str, str]) -> None:
    """Each record carries the parsed body (secrets redacted) and the caller's client id."""
    options = {"type": "Full", "objects": [{"table": "Sales", "partition": "2026"}], "commitMode": "Transactional"}
    api.post(f"{sales['base']}/refreshes", json=options)
    [token_call] = [r for r in emu.requests if r.endpoint == "token"]
    assert token_call.body["client_secret"] == "***"
    assert token_call.body["client_id"] == token_call.client_id == emu.client_id
    assert emu.client_secret not in repr(emu.requests)
    [post] = [r for r in emu.requests if r.endpoint == "refresh_post"]
    assert post.body == options
    assert post.client_id == emu.client_id
    assert emu.state.dataset(sales["ds"]).runs[0].caller == emu.client_id
    assert api.headers["Authorization"].split()[1] in emu.issued_tokens()
