"""Unit tests of PowerBIClient logic with a mocked transport: names, allow-list, POST safety, grace."""

from __future__ import annotations

import datetime as dt

import pytest

from pbi_taskflow.client import api
from pbi_taskflow.client.auth import AccessToken
from pbi_taskflow.client.models import Dataset, Handle, Refresh, RefreshOptions, RefreshStatus, Target, Workspace
from pbi_taskflow.client.names import pick
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.client.sync import PowerBIClient
from pbi_taskflow.errors import (
    AmbiguousNameError,
    AmbiguousRefreshRequestError,
    ConfigurationError,
    NotFoundError,
    RefreshAlreadyRunningError,
    ServerError,
    ThrottledError,
    TransportError,
    UnknownNameError,
    WorkspaceNotAllowedError,
)

WS = "11111111-1111-1111-1111-111111111111"
WS2 = "33333333-3333-3333-3333-333333333333"
DS = "22222222-2222-2222-2222-222222222222"


class FakeCredential:
    """Hands out numbered tokens and records invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.invalidated: list[str] = []

    def get_token(self) -> AccessToken:
        self.issued += 1
        return AccessToken(f"token-{self.issued}", 0)

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)


def ok(body=None, status=200, headers=None) -> api.ApiResponse:
    return api.ApiResponse(status, headers or {}, body)


@pytest.fixture
def client() -> PowerBIClient:
    return PowerBIClient(credential=FakeCredential(), retry=RetryPolicy(sleep=lambda s: None, jitter=0.0))


def groups(*items: tuple[str, str]) -> dict[str, object]:
    return {"value": [{"id": i, "name": n, "isOnDedicatedCapacity": True} for i, n in items]}


def test_pick_rules():
    """Ids match exactly; names case-insensitively; ambiguity and misses list candidates."""
    items = [Workspace(WS, "Sales"), Workspace(WS2, "sales "), Workspace("x", "Finance")]
    assert pick(items, WS.upper(), kind="workspace").id == WS
    assert pick(items, "FINANCE", kind="workspace").id == "x"
    with pytest.raises(AmbiguousNameError) as ambiguous:
        pick(items, "SALES", kind="workspace")
    assert {c["id"] for c in ambiguous.value.candidates} == {WS, WS2}
    with pytest.raises(UnknownNameError) as unknown:
        pick(items, "Finanse", kind="workspace")
    assert unknown.value.candidates == [{"name": "Finance", "id": "x"}]
    assert "Closest names: 'Finance'" in str(unknown.value)
    with pytest.raises(UnknownNameError, match="in workspace 'Sales'"):
        pick([Dataset(DS, "Revenue", WS)], "Costs", kind="dataset", container="Sales")


def test_get_workspace_uses_exact_filter_then_full_list(client, mocker):
    """A name is looked up with $filter first; a miss falls back to the full list for close names."""
    call = mocker.patch.object(client, "call", side_effect=[ok({"value": []}), ok(groups((WS, "Sales")))])
    assert client.get_workspace("sales").id == WS
    first, second = (c.args[0] for c in call.call_args_list)
    assert first.params == {"$filter": "name eq 'sales'"}
    assert second.params is None


def test_get_workspace_single_filter_hit_is_one_call_and_cached(client, mocker):
    """An exact filter hit needs one call, and resolving again uses the cache."""
    call = mocker.patch.object(client, "call", return_value=ok(groups((WS, "Sales"))))
    assert client.get_workspace("Sales").id == WS
    assert client.get_workspace("SALES").id == WS
    assert client.get_workspace(WS).name == "Sales"
    assert call.call_count == 1


def test_dataset_by_id_is_one_get(client, mocker):
    """A dataset GUID is fetched directly without listing."""
    call = mocker.patch.object(client, "call", return_value=ok({"id": DS, "name": "Revenue"}))
    assert client.get_dataset(WS, DS).name == "Revenue"
    assert call.call_args.args[0].endpoint == "dataset"


def test_allow_list_decisions(client):
    """Direct hits pass, same-kind misses fail at once, cross-kind misses wait for resolution."""
    client.allowed_workspaces = ("Sales", WS2)
    assert client.check_workspace_allowed("sales") is True
    assert client.check_workspace_allowed(WS2.upper()) is True
    assert client.check_workspace_allowed("Finance") is False  # could be WS2 by name
    client.allowed_workspaces = ("Sales",)
    with pytest.raises(WorkspaceNotAllowedError, match="'Finance'"):
        client.check_workspace_allowed("Finance")


def test_resolve_merges_defaults_and_needs_a_workspace(client, mocker):
    """Task defaults fill unset options; no workspace at all is a configuration error."""
    mocker.patch.object(
        client, "call", side_effect=[ok(groups((WS, "Sales"))), ok({"value": [{"id": DS, "name": "Revenue"}]})]
    )
    target = client.resolve(Refresh("Revenue"), default_workspace="Sales", defaults=RefreshOptions(retry_count=2))
    assert target.options.retry_count == 2
    assert target.on_dedicated_capacity is True
    with pytest.raises(ConfigurationError, match="No workspace"):
        client.resolve(Refresh("Revenue"))


def _target(enhanced: bool = False) -> Target:
    return Target(WS, "Sales", DS, "Revenue", RefreshOptions(type="Full") if enhanced else RefreshOptions(), True)


def _history(*entries: dict[str, str]) -> api.ApiResponse:
    return ok({"value": list(entries)})


def test_trigger_standard_returns_request_id(client, mocker):
    """A standard refresh is identified by the RequestId header."""
    mocker.patch.object(client, "call", return_value=ok(None, 202, {"RequestId": "R1"}))
    handle = client.trigger_refresh(_target())
    assert (handle.refresh_id, handle.kind) == ("R1", "standard")


@pytest.mark.parametrize("fault", [TransportError("reset"), ServerError("boom", status=503)], ids=["reset", "503"])
def test_ambiguous_post_is_never_sent_again(client, mocker, fault):
    """A POST whose answer was lost (it may have arrived) raises AmbiguousRefreshRequestError after one send:
    the caller looks for the refresh in the history instead."""
    call = mocker.patch.object(client, "call", side_effect=fault)
    with pytest.raises(AmbiguousRefreshRequestError) as caught:
        client.trigger_refresh(_target())
    assert call.call_count == 1
    assert caught.value.requested_at
    assert "may have reached Power BI" in str(caught.value)


def test_post_that_never_connected_or_was_throttled_is_sent_again(client, mocker):
    """Throttling and a connection that could not be opened prove the request did not arrive: it is re-sent."""
    unsent = TransportError("refused")
    unsent.unsent = True  # type: ignore[attr-defined]
    call = mocker.patch.object(client, "call", side_effect=[ThrottledError("slow", retry_after=0), unsent,
                                                            ok(None, 202, {"RequestId": "R2"})])
    assert client.trigger_refresh(_target()).refresh_id == "R2"
    assert call.call_count == 3


def test_already_running_without_ambiguity_is_raised(client, mocker):
    """A plain 400 already-running is raised at once (no history lookups)."""
    call = mocker.patch.object(client, "call", side_effect=RefreshAlreadyRunningError("already executing", status=400))
    with pytest.raises(RefreshAlreadyRunningError):
        client.trigger_refresh(_target())
    assert call.call_count == 1


def test_token_rejection_renews_once(client, mocker):
    """A 403 TokenExpired invalidates the token and repeats the call once with a new one."""
    seen: list[str] = []

    def exchange(request, token):
        seen.append(token.token)
        if len(seen) == 1:
            api.raise_for_response(403, {}, {"error": {"code": "TokenExpired"}})
        return ok({"value": []})

    mocker.patch.object(client, "_exchange", side_effect=exchange)
    assert client.list_workspaces() == []
    assert seen == ["token-1", "token-2"]
    assert client.credential.invalidated == ["token-1"]


def test_standard_refresh_missing_from_history_is_not_started_then_lost(client, mocker):
    """A standard refresh absent from history is NotStarted within the grace period, then NotFoundError."""
    mocker.patch.object(client, "call", return_value=_history())
    fresh = Handle(WS, "Sales", DS, "Revenue", "R1", "standard", dt.datetime.now(dt.timezone.utc).isoformat())
    assert client.get_refresh_state(fresh).status is RefreshStatus.NOT_STARTED
    old = Handle(WS, "Sales", DS, "Revenue", "R1", "standard", "2020-01-01T00:00:00+00:00")
    with pytest.raises(NotFoundError, match="dropped"):
        client.get_refresh_state(old)


def test_timeouts_and_allow_list_inputs_are_validated():
    """Timeouts must be positive numbers or pairs; allow-list entries must be strings."""
    cred = FakeCredential()
    assert PowerBIClient(credential=cred, timeout=30).timeout == (10.0, 30.0)
    assert PowerBIClient(credential=cred, allowed_workspaces="A, ,B").allowed_workspaces == ("A", "B")
    with pytest.raises(ConfigurationError, match="timeout"):
        PowerBIClient(credential=cred, timeout=0)
    with pytest.raises(ConfigurationError, match="allowed_workspaces"):
        PowerBIClient(credential=cred, allowed_workspaces=[1])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="credential"):
        PowerBIClient(credential=None)  # type: ignore[arg-type]


def test_enhanced_details_404_is_not_started_within_grace(client, mocker):
    """An enhanced refresh whose details are not there yet is NotStarted, later a NotFoundError."""
    mocker.patch.object(client, "call", side_effect=NotFoundError("gone", status=404))
    fresh = Handle(WS, "Sales", DS, "Revenue", "R1", "enhanced", dt.datetime.now(dt.timezone.utc).isoformat())
    assert client.get_refresh_state(fresh).status is RefreshStatus.NOT_STARTED
    old = Handle(WS, "Sales", DS, "Revenue", "R1", "enhanced", "2020-01-01T00:00:00+00:00")
    with pytest.raises(NotFoundError):
        client.get_refresh_state(old)


def test_refresh_history_names_appear_in_errors(client, mocker):
    """Optional workspace/dataset names are used in error messages of the history call."""
    mocker.patch.object(client, "_exchange", side_effect=lambda request, token: api.check(
        ok({"error": {"code": "ItemNotFound", "message": "gone"}}, 404), request))
    with pytest.raises(NotFoundError, match="'Revenue' in workspace 'Sales'"):
        client.refresh_history(WS, DS, top=5, _names=("Sales", "Revenue"))


@pytest.mark.parametrize(
    ("url", "ok_"),
    [
        ("https://api.powerbi.com/v1.0/myorg", True),
        ("http://127.0.0.1:8443/v1.0/myorg", True),
        ("http://localhost:1/v1.0/myorg", True),
        ("http://[::1]:1/v1.0/myorg", True),
        ("http://api.powerbi.com/v1.0/myorg", False),
        ("ftp://api.powerbi.com", False),
        ("api.powerbi.com", False),
    ],
)
def test_api_root_must_be_https_unless_loopback(url, ok_):
    """Plain http is accepted only for loopback API roots."""
    if ok_:
        assert PowerBIClient(credential=FakeCredential(), api_root=url).api_root == url
    else:
        with pytest.raises(ConfigurationError):
            PowerBIClient(credential=FakeCredential(), api_root=url)


def test_persistent_unsent_post_failures_are_bounded(mocker):
    """With every connection refused, at most `attempts` POSTs are sent, then the error is raised."""
    client = PowerBIClient(credential=FakeCredential(), retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    unsent = TransportError("refused")
    unsent.unsent = True  # type: ignore[attr-defined]
    call = mocker.patch.object(client, "call", side_effect=unsent)
    with pytest.raises(TransportError):
        client.trigger_refresh(_target())
    assert call.call_count == 2
