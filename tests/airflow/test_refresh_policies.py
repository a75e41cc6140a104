"""Refresh policies under real ``dag.test()`` against the emulator: failures, if_running, min_interval,
on_empty, concurrency, retries that reattach, timeouts and kills that cancel."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from typing import Any

import pytest

from pbi_taskflow import Refresh, powerbi_refresh

pytestmark = pytest.mark.integration

FAST = {"poll_interval": 0.1, "max_poll_interval": 0.5}


def _single(dag_id: str, make_dag: Any, selection: Any, **kwargs: Any) -> Any:
    def body() -> None:
        @powerbi_refresh(task_id="refresh", workspace="Sales", **{**FAST, **kwargs})
        def refresh() -> Any:
            return selection

        refresh()

    return make_dag(dag_id, body)


def _by_name(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["dataset_name"]: r for r in results}


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_partial_failure_fails_the_task_naming_each_failed_dataset(
    sales: Any, make_dag: Any, run_dag: Any, deferrable: bool
) -> None:
    """With fail_policy='any' one failed dataset fails the task; the message carries Power BI's error."""
    sales.set_refresh("Costs", outcome="Failed", error_code="ModelRefreshFailed_CredentialsNotSpecified",
                      error_message="The credentials provided for the SQL source are invalid.")
    result = run_dag(_single(f"partial_{deferrable}", make_dag, ["Revenue", "Costs"], deferrable=deferrable))
    assert result.task_states["refresh"] == "failed"
    logs = result.logs("refresh")
    assert "RefreshFailedError" in logs
    assert "failed for 1 of 2 dataset(s)" in logs
    assert "'Costs'" in logs
    assert "ModelRefreshFailed_CredentialsNotSpecified" in logs
    assert "The credentials provided for the SQL source are invalid." in logs
    records = _by_name(result.xcom("refresh"))
    assert records["Revenue"]["status"] == "Completed"
    assert records["Costs"]["status"] == "Failed"
    assert result.asset_events == []


def test_standard_and_enhanced_results_share_one_timestamp_format(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """start/end of standard and enhanced refreshes reach the XCom and asset events in one ISO 8601 UTC form."""
    result = run_dag(_single("timestamps", make_dag, ["Revenue", Refresh("Costs", type="Full")]))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert {records["Revenue"]["kind"], records["Costs"]["kind"]} == {"standard", "enhanced"}
    stamps = [r[k] for r in records.values() for k in ("start", "end")]
    stamps += [e["extra"][k] for e in result.asset_events for k in ("start", "end") if k in e["extra"]]
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", stamp), stamps


def test_fail_policy_all_tolerates_a_partial_failure(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """With fail_policy='all' the task succeeds while at least one dataset refreshed, with assets for those only."""
    sales.set_refresh("Costs", outcome="Failed", error_code="Boom", error_message="source down")
    result = run_dag(_single("policy_all", make_dag, ["Revenue", "Costs"], fail_policy="all"))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert (records["Revenue"]["status"], records["Costs"]["status"]) == ("Completed", "Failed")
    assert [e["extra"]["dataset_name"] for e in result.asset_events] == ["Revenue"]


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_if_running_wait_refreshes_after_the_running_one(
    sales: Any, make_dag: Any, run_dag: Any, deferrable: bool
) -> None:
    """if_running='wait' waits for the scheduled refresh to end, then starts its own."""
    external: dict[str, Any] = {}

    def body() -> None:
        @powerbi_refresh(task_id="refresh", workspace="Sales", if_running="wait", deferrable=deferrable, **FAST)
        def refresh() -> str:
            # started by the task's own function, so it still runs when the task plans however slow the machine
            external.update(sales.start_external_refresh("Revenue", duration=1.0))
            return "Revenue"

        refresh()

    result = run_dag(make_dag(f"wait_{deferrable}", body))
    assert result.state == "success", result.logs()
    [record] = result.xcom("refresh")
    assert record["status"] == "Completed"
    assert record["refresh_id"] != external["request_id"]
    assert sales.count("refresh_post") == 1
    [post] = [r for r in sales.requests if r.endpoint == "refresh_post"]
    assert post.time >= external["end"]  # sent only after the running refresh ended


def test_if_running_attach_follows_the_running_refresh(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """if_running='attach' reports the running refresh's outcome without starting another."""
    external: dict[str, Any] = {}

    def body() -> None:
        @powerbi_refresh(task_id="refresh", workspace="Sales", if_running="attach", **FAST)
        def refresh() -> str:
            # started by the task's own function, so it still runs when the task plans however slow the machine
            external.update(sales.start_external_refresh("Revenue", duration=0.8))
            return "Revenue"

        refresh()

    result = run_dag(make_dag("attach", body))
    assert result.state == "success", result.logs()
    [record] = result.xcom("refresh")
    assert (record["refresh_id"], record["status"]) == (external["request_id"], "Completed")
    assert sales.count("refresh_post") == 0


def test_if_running_skip_skips_the_busy_dataset_only(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """if_running='skip' marks the busy dataset Skipped and refreshes the others."""
    sales.start_external_refresh("Revenue", duration=5.0)
    result = run_dag(_single("skip_busy", make_dag, ["Revenue", "Costs"], if_running="skip"))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert records["Revenue"]["status"] == "Skipped"
    assert "another refresh is running" in records["Revenue"]["reason"]
    assert records["Costs"]["status"] == "Completed"
    assert sales.count("refresh_post") == 1


def test_if_running_fail_fails_the_busy_dataset(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """if_running='fail' fails the task naming the dataset that was already refreshing."""
    sales.start_external_refresh("Revenue", duration=5.0)
    result = run_dag(_single("fail_busy", make_dag, "Revenue", if_running="fail"))
    assert result.task_states["refresh"] == "failed"
    assert "already refreshing" in result.logs("refresh")
    assert sales.count("refresh_post") == 0


def test_min_interval_skips_recently_refreshed_datasets(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """A dataset refreshed successfully 10 minutes ago is skipped with min_interval=1 h; older ones refresh."""
    sales.add_history("Revenue", ago=600, duration=30)
    sales.add_history("Costs", ago=7200, duration=30)
    result = run_dag(_single("min_interval", make_dag, ["Revenue", "Costs"], min_interval=dt.timedelta(hours=1)))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert records["Revenue"]["status"] == "Skipped"
    assert "min_interval" in records["Revenue"]["reason"]
    assert records["Costs"]["status"] == "Completed"
    assert sales.count("refresh_post") == 1


@pytest.mark.parametrize(("on_empty", "state"), [("skip", "skipped"), ("succeed", "success"), ("fail", "failed")])
def test_on_empty_decides_the_outcome_of_an_empty_selection(
    sales: Any, make_dag: Any, run_dag: Any, on_empty: str, state: str
) -> None:
    """An empty selection skips, succeeds or fails the task as on_empty says, without any HTTP call."""
    result = run_dag(_single(f"empty_{on_empty}", make_dag, [], on_empty=on_empty))
    assert result.task_states["refresh"] == state
    assert sales.count() == 0


def test_max_concurrency_bounds_the_refreshes_running_at_once(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """With max_concurrency=1 three datasets refresh one after another, all completed."""
    result = run_dag(_single("serial", make_dag, ["Revenue", "Costs", "Stock"], max_concurrency=1, deferrable=True))
    assert result.state == "success", result.logs()
    records = sorted(result.xcom("refresh"), key=lambda r: r["start"])
    for earlier, later in itertools.pairwise(records):
        assert earlier["end"] <= later["start"]
    assert sales.count("refresh_post") == 3


def test_retry_after_a_crash_reattaches_without_a_second_post(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A try that dies while waiting leaves its refresh recorded; the retry follows it instead of starting another."""
    from pbi_taskflow.engine.waiter import Waiter

    sales.set_refresh("Revenue", duration=1.5)
    original = Waiter.wait
    calls = {"n": 0}

    def crash_once(self: Waiter, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("worker lost")  # like a worker dying: no cleanup code of the task runs
        return original(self, **kwargs)

    monkeypatch.setattr(Waiter, "wait", crash_once)
    dag = _single("crash", make_dag, "Revenue", retries=1, retry_delay=dt.timedelta(seconds=0))
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    assert result.ti("refresh").try_number == 2
    assert "Resuming the refreshes recorded by an earlier try" in result.logs("refresh")
    assert sales.count("refresh_post") == 1
    [record] = result.xcom("refresh")
    assert record["status"] == "Completed"


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_waiting_timeout_cancels_the_refreshes_it_started(
    sales: Any, make_dag: Any, run_dag: Any, deferrable: bool
) -> None:
    """When the task's timeout passes, its enhanced refresh is cancelled and the task fails as timed out."""
    sales.set_refresh("Revenue", duration=60)
    dag = _single(f"timeout_{deferrable}", make_dag, Refresh("Revenue", type="Full"), timeout=1.5, deferrable=deferrable)
    result = run_dag(dag)
    assert result.task_states["refresh"] == "failed"
    assert "RefreshTimeoutError" in result.logs("refresh")
    assert sales.count("cancel") == 1
    [record] = result.xcom("refresh")
    assert record["status"] == "TimedOut"


def test_execution_timeout_cancels_the_refreshes_it_started(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Airflow's execution_timeout interrupting the wait cancels the task's enhanced refresh."""
    sales.set_refresh("Revenue", duration=60)
    dag = _single("exec_timeout", make_dag, Refresh("Revenue", type="Full"), timeout=None,
                  execution_timeout=dt.timedelta(seconds=2))
    result = run_dag(dag)
    assert result.task_states["refresh"] == "failed"
    assert sales.count("cancel") == 1


@pytest.mark.parametrize("which", ["timeout", "execution_timeout"])
def test_no_cancel_on_timeout_leaves_the_refresh_running(sales: Any, make_dag: Any, run_dag: Any, which: str) -> None:
    """cancel_on_timeout=False stops waiting without cancelling, for both kinds of timeout."""
    sales.set_refresh("Revenue", duration=60)
    limits = {"timeout": 1.0} if which == "timeout" else {"timeout": None, "execution_timeout": dt.timedelta(seconds=2)}
    dag = _single(f"keep_{which}", make_dag, Refresh("Revenue", type="Full"), cancel_on_timeout=False, **limits)
    result = run_dag(dag)
    assert result.task_states["refresh"] == "failed"
    assert sales.count("cancel") == 0


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_retry_refreshes_only_the_datasets_that_did_not_complete(
    sales: Any, make_dag: Any, run_dag: Any, deferrable: bool
) -> None:
    """After a partial failure the retry refreshes only the failed dataset; the completed one is Skipped, naming try 1,
    and both get their asset event from the successful try (the carried-over one marked with its try)."""
    sales.set_refresh("Costs", outcome="Failed", error_code="Boom", error_message="source down")
    retried: list[int] = []

    def fix_costs(context: Any) -> None:
        retried.append(context["ti"].try_number)
        sales.set_refresh("Costs", outcome="Completed")

    dag = _single(f"partial_retry_{deferrable}", make_dag, ["Revenue", "Costs"], deferrable=deferrable, retries=1,
                  retry_delay=dt.timedelta(seconds=0), on_retry_callback=fix_costs)
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    assert retried == [1]
    records = _by_name(result.xcom("refresh"))
    assert records["Costs"]["status"] == "Completed"
    assert records["Revenue"]["status"] == "Skipped"
    assert "completed in try 1 of this DAG run" in records["Revenue"]["reason"]
    assert records["Revenue"]["refresh_id"]
    assert records["Revenue"]["refresh_id"] in records["Revenue"]["reason"]
    assert sales.count("refresh_post") == 3  # Revenue once, Costs in both tries
    events = {e["extra"]["dataset_name"]: e["extra"] for e in result.asset_events}
    assert set(events) == {"Revenue", "Costs"}
    assert events["Revenue"]["completed_in_try"] == 1
    assert events["Revenue"]["refresh_id"] == records["Revenue"]["refresh_id"]
    assert events["Revenue"]["status"] == "Completed"
    assert "completed_in_try" not in events["Costs"]


def _clear_and_rerun(dag: Any, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """Clear one task instance with Airflow's own clear, run it again in the same DAG run, return its XCom."""
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.models.xcom import XComModel
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    def ti_query(session: Any) -> Any:
        return session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run_id, task_id=task_id)

    with create_session() as session:
        clear_task_instances(ti_query(session).all(), session)
    with create_session() as session:
        ti = ti_query(session).one()
        ti.try_number += 1  # as the scheduler (and dag.test) does when it schedules a try
        ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        _run_task(ti=ti, task=dag.task_dict[task_id], run_triggerer=True)
    with create_session() as session:
        ti = ti_query(session).one()
        assert ti.state == TaskInstanceState.SUCCESS, ti.state
        row = session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=run_id, task_id=task_id,
                                                 key="return_value").one()
        value: list[dict[str, Any]] = XComModel.deserialize_value(row)
        return value


def test_clearing_a_partly_failed_task_refreshes_every_dataset_again(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """After a cleared task (e.g. upstream data fixed and re-run), nothing completed before is skipped."""
    sales.set_refresh("Costs", outcome="Failed", error_code="Boom", error_message="source down")
    dag = _single("cleared_partial", make_dag, ["Revenue", "Costs"], retries=0)
    first = run_dag(dag)
    assert first.task_states["refresh"] == "failed"
    assert sales.count("refresh_post") == 2

    sales.set_refresh("Costs", outcome="Completed")
    records = _by_name(_clear_and_rerun(dag, first.run_id, "refresh"))
    assert {name: r["status"] for name, r in records.items()} == {"Revenue": "Completed", "Costs": "Completed"}
    assert sales.count("refresh_post") == 4  # Revenue refreshed again, not reported as done by try 1


def test_transient_status_errors_never_cancel(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Server errors and throttling while polling delay the next poll; the refresh completes, nothing is cancelled."""
    sales.set_refresh("Revenue", duration=1.0)
    sales.inject("details", "error", count=2, status=503)
    sales.inject("details", "throttle", count=1, retry_after=0.2)
    result = run_dag(_single("transient", make_dag, Refresh("Revenue", type="Full")))
    assert result.state == "success", result.logs()
    assert sales.count("cancel") == 0
    assert sales.count("refresh_post") == 1
    assert "Power BI throttled" in result.logs("refresh")
    [record] = result.xcom("refresh")
    assert record["throttle_count"] == 1  # counted whether the client or the waiter waited it out


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_throttling_is_counted_per_dataset_and_shown_in_the_status_line(
    sales: Any, make_dag: Any, run_dag: Any, deferrable: bool
) -> None:
    """Every 429 waited through (the refresh POST and status calls) is counted for its dataset and its wait shown."""
    sales.inject("refresh_post", "throttle", retry_after=1, count=2)  # both on Revenue's POST, started first
    sales.inject("details", "throttle", retry_after=1, count=1)  # Revenue's first status call (worker or trigger)
    selection = [Refresh("Revenue", type="Full"), "Costs"]
    result = run_dag(_single(f"throttled_{deferrable}", make_dag, selection, deferrable=deferrable))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert records["Revenue"]["throttle_count"] == 3
    assert records["Costs"]["throttle_count"] == 0
    lines = [line for line in result.logs("refresh").splitlines() if "dataset=Revenue" in line and "status=" in line]
    assert lines
    assert all("throttled_s=3" in line for line in lines), lines


def test_on_kill_without_airflows_record_stops_waiting_and_cancels_nothing(sales: Any, pbi_connection: str) -> None:
    """on_kill when the task instance's state cannot be read (no task instance here) stops the wait but cancels
    nothing: a person's kill cannot be told from a shutdown, and a healthy refresh is never cancelled on a guess
    (a person's kill is covered in test_refresh_promise)."""
    from airflow.sdk import DAG

    from pbi_taskflow.airflow.operator import PowerBIRefreshOperator

    sales.set_refresh("Revenue", duration=60)
    with DAG("kill", schedule=None, start_date=dt.datetime(2026, 1, 1)):
        op = PowerBIRefreshOperator(task_id="refresh", refreshes=Refresh("Revenue", type="Full"), workspace="Sales",
                                    deferrable=False, **FAST)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute({})
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    for _ in range(100):
        if sales.count("refresh_post"):
            break
        threading.Event().wait(0.05)
    threading.Event().wait(0.3)
    op.on_kill()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert sales.count("cancel") == 0
    assert errors


def test_refresh_log_rows_are_written_when_configured(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """With refresh_log_conn_id set, one row per dataset lands in the SQL refresh log."""
    import json
    import sqlite3

    from pbi_taskflow.observability.refresh_log import DEFAULT_TABLE

    database = tmp_path / "refresh_log.db"
    monkeypatch.setenv("AIRFLOW_CONN_REFRESH_LOG", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    result = run_dag(_single("with_log", make_dag, ["Revenue", "Costs"], refresh_log_conn_id="refresh_log"))
    assert result.state == "success", result.logs()
    with sqlite3.connect(database) as db:
        rows = db.execute(f"SELECT dataset_name, status FROM {DEFAULT_TABLE} ORDER BY dataset_name").fetchall()
    assert rows == [("Costs", "Completed"), ("Revenue", "Completed")]


def test_workspace_outside_the_allow_list_fails_before_any_call(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection limited to other workspaces refuses the refresh, naming the workspace and the connection."""
    import json

    conn = json.loads(sales.airflow_conn_json())
    conn["extra"]["allowed_workspaces"] = ["Finance"]
    monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
    result = run_dag(_single("not_allowed", make_dag, "Revenue"))
    assert result.task_states["refresh"] == "failed"
    logs = result.logs("refresh")
    assert "WorkspaceNotAllowedError" in logs
    assert "'Sales'" in logs
    assert "'powerbi_default'" in logs
    assert sales.count("refresh_post") == 0
    assert sales.count("groups") == 0
