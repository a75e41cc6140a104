"""Service principal profiles and pre-flight checks in real ``dag.test()`` runs against the emulator: a task acting as
a profile sends the profile header on every Power BI call (worker and deferred waits), a retry follows the refreshes
an earlier try started as the profile that started them, and pre-flight checks fail a task before any refresh
POST, naming the dataset, the data source and the fix."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from test_refresh_policies import _single

from pbi_taskflow import Refresh

pytestmark = pytest.mark.integration

NO_DELAY = {"retries": 1, "retry_delay": dt.timedelta(seconds=0)}
ENTRA = ("discovery", "token", "keys")


@pytest.fixture
def contoso(emulator: Any, pbi_connection: str, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Profile Contoso owns workspace Sales (Revenue, Costs); the app's own Sales workspace holds other datasets."""
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__POLL_MIN_INTERVAL", "0.1")
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__POLL_MAX_INTERVAL", "0.5")
    profile = emulator.add_profile("Contoso")["id"]
    ws = emulator.add_workspace("Sales", profile="Contoso")
    for name in ("Revenue", "Costs"):
        emulator.add_dataset(ws["id"], name, duration=0.6)
    emulator.add_workspace("Sales")  # the app's own namesake: never reached while acting as Contoso
    return str(profile)


def _power_bi(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests if r.endpoint not in ENTRA]


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_task_acting_as_a_profile_sends_it_on_every_power_bi_call(
        contoso: str, emulator: Any, make_dag: Any, run_dag: Any, deferrable: bool) -> None:
    dag = _single(f"profile_{deferrable}", make_dag, ["Revenue", Refresh("Costs", type="Full")], profile_id=contoso,
                  deferrable=deferrable)
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    assert {r["status"] for r in result.xcom("refresh")} == {"Completed"}
    calls = _power_bi(emulator)
    assert {r.endpoint for r in calls} >= {"groups", "datasets", "history", "refresh_post", "details"}
    assert {r.profile_id for r in calls} == {contoso}
    assert all(r.profile_id is None for r in emulator.requests if r.endpoint in ENTRA)
    if not deferrable:  # a deferred task's resume pushes the handles still running: none by then
        assert {h["profile_id"] for h in result.xcom("refresh", key="pbi_handles")} == {contoso}


def test_the_connections_profile_applies_and_a_task_argument_is_checked_before_any_call(
        contoso: str, emulator: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = emulator.airflow_conn()
    conn["extra"]["profile_id"] = contoso
    monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
    result = run_dag(_single("profile_conn", make_dag, ["Revenue"]))
    assert result.state == "success", result.logs()
    assert {r.profile_id for r in _power_bi(emulator)} == {contoso}
    from pbi_taskflow.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="Invalid profile_id 'contoso'"):
        _single("profile_bad", make_dag, ["Revenue"], profile_id="contoso")


def test_a_retry_follows_the_refresh_as_the_profile_that_started_it(
        contoso: str, emulator: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection's profile changes while a try is interrupted: the retry still follows (and reports) the
    refresh as Contoso, and starts no second one."""
    from pbi_taskflow.engine.waiter import Waiter

    conn = emulator.airflow_conn()
    conn["extra"]["profile_id"] = contoso
    monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
    emulator.set_refresh("Revenue", duration=2.0)
    original, calls = Waiter.wait, {"n": 0}

    def crash_once(self: Waiter, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(0.5)
            other = emulator.add_profile("Fabrikam")["id"]
            monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(
                {**conn, "extra": {**conn["extra"], "profile_id": other}}))
            raise SystemExit("worker lost")
        return original(self, **kwargs)

    monkeypatch.setattr(Waiter, "wait", crash_once)
    result = run_dag(_single("profile_retry", make_dag, Refresh("Revenue", type="Full"), **NO_DELAY))
    assert result.state == "success", result.logs()
    assert result.ti("refresh").try_number == 2
    assert emulator.count("refresh_post") == 1
    assert {r.profile_id for r in _power_bi(emulator)} == {contoso}
    assert "following them as the profile that started them" in result.logs("refresh")
    assert [r["status"] for r in result.xcom("refresh")] == ["Completed"]


@pytest.fixture
def wired(sales: Any) -> Any:
    """Sales/Revenue reads SQL through gateway HQ; Costs reads an Excel file through it and an unbound OData feed."""
    sales.add_gateway("HQ")
    sales.add_datasource("Revenue", server="sql01", database="revenue", gateway="HQ", name="Revenue DB")
    sales.add_datasource("Costs", type="File", connection_details={"path": "costs.xlsx"}, gateway="HQ",
                         name="Costs workbook")
    return sales


def test_preflight_passes_healthy_sources_and_refreshes(wired: Any, make_dag: Any, run_dag: Any) -> None:
    result = run_dag(_single("preflight_ok", make_dag, ["Revenue", "Costs", "Stock"], preflight=True))
    assert result.state == "success", result.logs()
    logs = result.logs("refresh")
    assert "Pre-flight: 'Sales'/'Revenue': data source 'Revenue DB': reachable through gateway" in logs
    assert "'Sales'/'Stock': no data sources listed" in logs
    assert wired.count("refresh_post") == 3


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_preflight_fails_the_task_before_any_refresh_post(
        wired: Any, make_dag: Any, run_dag: Any, deferrable: bool) -> None:
    wired.set_datasource("Revenue", "Revenue DB", credentials=False)
    wired.add_datasource("Costs", type="OData", connection_details={"url": "https://odata.example/svc"})
    result = run_dag(_single(f"preflight_fail_{deferrable}", make_dag, ["Revenue", "Costs", "Stock"], preflight=True,
                             deferrable=deferrable, retries=0))
    assert result.state == "failed"
    assert wired.count("refresh_post") == 0
    assert wired.count("history") == 0  # nothing planned either
    logs = result.logs("refresh")
    assert "PreflightFailedError" in logs
    assert "'Sales'/'Revenue': data source 'Revenue DB': no credentials on gateway" in logs
    assert "'Sales'/'Costs': data source 'OData https://odata.example/svc': not bound" in logs
    assert "no refresh was started" in logs
    wired.set_gateway("HQ", online=False)
    wired.log.clear()
    result = run_dag(_single(f"preflight_offline_{deferrable}", make_dag, ["Costs"], preflight=True, retries=0))
    assert result.state == "failed"
    assert "is offline (DM_GWPipeline_Client_GatewayUnreachable)" in result.logs("refresh")
    assert wired.count("refresh_post") == 0


def test_preflight_retries_transient_faults_and_does_not_block_on_refused_reads(
        wired: Any, make_dag: Any, run_dag: Any) -> None:
    wired.inject("datasources", "throttle", retry_after=0.05, dataset="Revenue")
    wired.inject("gateway_datasource_status", "error", status=403, count=5)
    result = run_dag(_single("preflight_refused", make_dag, ["Revenue", "Costs"], preflight=True, retries=0))
    assert result.state == "success", result.logs()
    assert "whose status the service principal may not read" in result.logs("refresh")
    assert wired.count("refresh_post") == 2
