"""Both clients acting as a service principal profile against the emulator: the profile header on every Power BI
call and never on Entra ID's, one token for every profile of the app, handles that remember their profile, and the
pre-flight checks of data sources and gateways through the sync client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbi_taskflow.client.auth import token_requests
from pbi_taskflow.client.models import Refresh
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.engine.preflight import FAIL, OK, UNCHECKED, check_dataset, require_ready
from pbi_taskflow.errors import ConfigurationError, PermissionDeniedError, PreflightFailedError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cold_token_cache")]


@pytest.fixture
def estate(emulator: Any) -> dict[str, Any]:
    """Profiles Contoso and Fabrikam, each with a workspace Finance holding Sales; the app's own workspace Ops."""
    emulator.time_scale = 20.0
    profiles = {name: emulator.add_profile(name)["id"] for name in ("Contoso", "Fabrikam")}
    for name in profiles:
        ws = emulator.add_workspace("Finance", profile=name)
        emulator.add_dataset(ws["id"], "Sales", duration=2.0)
    emulator.add_workspace("Ops")
    return profiles


def _settings(emulator: Any, profile_id: str | None = None) -> ConnectionSettings:
    conn = emulator.airflow_conn()
    if profile_id:
        conn["extra"]["profile_id"] = profile_id
    return ConnectionSettings.from_mapping(conn, conn_id="powerbi_default")


def test_the_sync_client_sends_the_profile_on_every_power_bi_call_and_never_to_entra(
        emulator: Any, estate: dict[str, str]) -> None:
    with _settings(emulator, estate["Contoso"].upper()).build_client(retry=RetryPolicy(initial_backoff=0.01, jitter=0)) as client:
        assert client.profile_id == estate["Contoso"]
        target = client.resolve(Refresh("Sales", "Finance", type="Full"))
        handle = client.trigger_refresh(target)
        assert (target.profile_id, handle.profile_id) == (estate["Contoso"], estate["Contoso"])
        client.get_refresh_state(handle)
        client.refresh_history(target.workspace_id, target.dataset_id)
    power_bi = [r for r in emulator.requests if r.endpoint not in ("discovery", "token", "keys")]
    assert {r.endpoint for r in power_bi} >= {"groups", "datasets", "refresh_post", "details", "history"}
    assert {r.profile_id for r in power_bi} == {estate["Contoso"]}
    entra = [r for r in emulator.requests if r.endpoint in ("discovery", "token")]
    assert entra
    assert all(r.profile_id is None for r in entra)


def test_one_token_serves_every_profile_of_the_app(emulator: Any, estate: dict[str, str]) -> None:
    """The token cache is per service principal: the header picks the profile, the token stays the app's."""
    before = token_requests()
    seen = {}
    for name, profile in (*estate.items(), ("app", None)):
        with _settings(emulator, profile).build_client() as client:
            seen[name] = [w.name for w in client.list_workspaces()]
    assert seen == {"Contoso": ["Finance"], "Fabrikam": ["Finance"], "app": ["Ops"]}
    assert token_requests() - before == 1


def test_a_handle_is_followed_only_as_the_profile_that_started_it(emulator: Any, estate: dict[str, str]) -> None:
    with _settings(emulator, estate["Contoso"]).build_client() as contoso:
        handle = contoso.trigger_refresh(contoso.resolve(Refresh("Sales", "Finance", type="Full")))
    with _settings(emulator, estate["Fabrikam"]).build_client() as fabrikam, \
            pytest.raises(ConfigurationError, match="started as service principal profile"):
        fabrikam.get_refresh_state(handle)
    with _settings(emulator).build_client() as app, pytest.raises(ConfigurationError, match="no profile"):
        app.cancel_refresh(handle)
    assert emulator.count("details") == 0
    assert emulator.count("cancel") == 0


def test_the_async_client_sends_the_profile_on_every_call(emulator: Any, estate: dict[str, str]) -> None:
    with _settings(emulator, estate["Fabrikam"]).build_client() as sync:
        handle = sync.trigger_refresh(sync.resolve(Refresh("Sales", "Finance")))
    emulator.log.clear()

    async def follow() -> None:
        client = _settings(emulator, estate["Fabrikam"]).build_async_client()
        try:
            await client.get_refresh_state(handle)
            await client.get_workspace("Finance")
        finally:
            await client.aclose()

    asyncio.run(follow())
    power_bi = [r for r in emulator.requests if r.endpoint not in ("discovery", "token", "keys")]
    assert {r.endpoint for r in power_bi} >= {"history", "groups"}
    assert {r.profile_id for r in power_bi} == {estate["Fabrikam"]}


def test_an_unknown_profile_is_refused_with_a_clear_error(emulator: Any, estate: dict[str, str]) -> None:
    with _settings(emulator, "6d0f1a5e-0000-4000-8000-000000000000").build_client() as client, \
            pytest.raises(PermissionDeniedError) as caught:
        client.list_workspaces()
    assert caught.value.status == 401
    assert caught.value.code == "PowerBINotAuthorizedException"
    with pytest.raises(ConfigurationError, match="Invalid profile_id 'contoso'"):
        ConnectionSettings.from_mapping({**emulator.settings(), "profile_id": "contoso"})


# --- pre-flight checks ------------------------------------------------------------------------------------------


@pytest.fixture
def wired(emulator: Any) -> Any:
    """Finance/Sales reads SQL through gateway HQ and an Excel file; returns (client, target)."""
    emulator.add_workspace("Finance")
    ds = emulator.add_dataset("Finance", "Sales")
    emulator.add_gateway("HQ")
    emulator.add_datasource(ds["id"], server="sql01", database="sales", gateway="HQ", name="Sales DB")
    emulator.add_datasource(ds["id"], type="File", connection_details={"path": "orders.xlsx"}, gateway="HQ")
    client = _settings(emulator).build_client(retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0))
    yield emulator, client, client.resolve(Refresh("Sales", "Finance")), ds["id"]
    client.close()


def test_healthy_data_sources_pass(wired: Any) -> None:
    emulator, client, target, _ = wired
    check = check_dataset(client, target)
    assert [c.verdict for c in check.checks] == [OK, OK]
    assert check.checks[0].datasource == "Sales DB"
    require_ready([check])
    assert emulator.count("bound_gateway_datasources") == 1
    assert emulator.count("gateway_datasource_status") == 2


def test_offline_gateway_missing_credentials_and_unbound_sources_fail_with_fixes(wired: Any) -> None:
    emulator, client, target, ds = wired
    emulator.set_datasource(ds, "Sales DB", credentials=False)
    emulator.add_datasource(ds, type="OData", connection_details={"url": "https://odata.example/svc"})
    check = check_dataset(client, target)
    assert [c.verdict for c in check.checks] == [FAIL, OK, FAIL]
    assert "no credentials" in check.checks[0].problem
    assert "credentials" in (check.checks[0].fix or "")
    assert "not bound" in check.checks[2].problem
    emulator.set_gateway("HQ", online=False)
    check = check_dataset(client, target)
    assert all("offline" in c.problem for c in check.checks[:2])
    with pytest.raises(PreflightFailedError) as caught:
        require_ready([check])
    assert "no refresh was started" in str(caught.value)
    assert len(caught.value.problems) == 3
    assert "'Finance'/'Sales': data source 'Sales DB': gateway" in caught.value.problems[0]


def test_transient_faults_are_retried_and_refusals_leave_the_check_open(wired: Any) -> None:
    emulator, client, target, _ = wired
    emulator.inject("datasources", "error", status=503)
    emulator.inject("gateway_datasource_status", "throttle", retry_after=0.01)
    assert check_dataset(client, target).verdict == OK
    assert emulator.count("datasources") == 2
    emulator.inject("gateway_datasource_status", "error", status=403, count=2)
    check = check_dataset(client, target)
    assert [c.verdict for c in check.checks] == [UNCHECKED, UNCHECKED]
    assert "may not read" in check.checks[0].problem
    assert "admin of the gateway" in (check.checks[0].fix or "")
    require_ready([check])  # what cannot be checked does not block
    emulator.inject("datasources", "error", status=403)
    check = check_dataset(client, target)
    assert check.verdict == UNCHECKED
    assert check.checks[0].datasource is None
