"""Dataflows as refresh targets in real ``dag.test()`` runs against the emulator: a ``Dataflow(...)`` in a task's
return value is refreshed with one request, its transaction is found and followed to its end (in the worker and
deferred), and it gets the same result record (``kind="dataflow"``), status lines and policies as a dataset."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from test_refresh_policies import _by_name, _single

from pbi_taskflow import Dataflow

pytestmark = pytest.mark.integration


@pytest.fixture
def etl(sales: Any) -> Any:
    """Workspace Sales also holds dataflow "Sales ETL" (a 0.6 s refresh)."""
    sales.add_dataflow("Sales", "Sales ETL", duration=0.6)
    return sales


def _posts(emulator: Any, endpoint: str) -> list[Any]:
    return [r for r in emulator.requests if r.endpoint == endpoint]


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_dataflow_and_a_dataset_in_one_return_value_are_each_refreshed_once(
        etl: Any, make_dag: Any, run_dag: Any, deferrable: bool) -> None:
    result = run_dag(_single(f"df_{deferrable}", make_dag, [Dataflow("sales etl"), "Revenue"], deferrable=deferrable))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    flow = records["Sales ETL"]
    assert (flow["kind"], flow["status"]) == ("dataflow", "Completed")
    assert flow["refresh_id"]
    assert flow["duration_s"] is not None
    assert flow["web_url"].endswith(f"/dataflows/{flow['dataset_id']}")
    assert records["Revenue"]["kind"] == "standard"
    assert len(_posts(etl, "dataflow_refresh")) == 1
    assert len(_posts(etl, "refresh_post")) == 1
    logs = result.logs("refresh")
    assert "Sales ETL" in logs
    assert "Completed" in logs
    uris = {e["uri"] for e in result.asset_events}
    assert f"powerbi://{flow['workspace_id'].lower()}/dataflows/{flow['dataset_id'].lower()}" in uris
    assert f"powerbi://{flow['workspace_id'].lower()}/{records['Revenue']['dataset_id'].lower()}" in uris


def test_a_failed_dataflow_fails_the_task_naming_it(etl: Any, make_dag: Any, run_dag: Any) -> None:
    etl.set_dataflow_refresh("Sales ETL", outcome="Failed")
    result = run_dag(_single("df_failed", make_dag, [Dataflow("Sales ETL")]))
    assert result.task_states["refresh"] == "failed"
    logs = result.logs("refresh")
    assert "Sales ETL" in logs
    assert "DataflowRefreshFailed" in logs


def test_if_running_skip_applies_to_a_dataflow_someone_else_refreshes(etl: Any, make_dag: Any, run_dag: Any) -> None:
    etl.start_external_dataflow_refresh("Sales ETL", duration=5.0)
    result = run_dag(_single("df_skip", make_dag, [Dataflow("Sales ETL")], if_running="skip"))
    assert result.state == "success", result.logs()
    [record] = result.xcom("refresh")
    assert (record["kind"], record["status"]) == ("dataflow", "Skipped")
    assert "another refresh is running" in record["reason"]
    assert not _posts(etl, "dataflow_refresh")


def test_if_running_wait_refreshes_a_dataflow_after_the_running_transaction(
        etl: Any, make_dag: Any, run_dag: Any) -> None:
    etl.start_external_dataflow_refresh("Sales ETL", duration=1.0)
    result = run_dag(_single("df_wait", make_dag, [Dataflow("Sales ETL")]))
    assert result.state == "success", result.logs()
    [record] = result.xcom("refresh")
    assert (record["kind"], record["status"]) == ("dataflow", "Completed")
    assert len(_posts(etl, "dataflow_refresh")) == 1


def test_an_unknown_dataflow_name_fails_before_any_refresh(etl: Any, make_dag: Any, run_dag: Any) -> None:
    result = run_dag(_single("df_unknown", make_dag, [Dataflow("Sales ELT"), "Revenue"]))
    assert result.task_states["refresh"] == "failed"
    assert "Sales ETL" in result.logs("refresh")  # the closest name is suggested
    assert not _posts(etl, "dataflow_refresh")
    assert not _posts(etl, "refresh_post")


@pytest.mark.parametrize("when", ["after_post", "mid_wait"])
def test_a_retry_follows_the_dataflows_transaction_instead_of_starting_another(
        etl: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """The first try dies right after the refresh request (its transaction not identified yet) or while waiting:
    the retry finds the transaction the request started and follows it; one request in all."""
    from pbi_taskflow.engine.waiter import Waiter

    etl.set_dataflow_refresh("Sales ETL", duration=2.0)
    original, calls = (Waiter.start if when == "after_post" else Waiter.wait), {"n": 0}

    def crash_once(self: Waiter, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        value = original(self, *args, **kwargs) if when == "after_post" else None
        if calls["n"] == 1:
            if when == "mid_wait":
                time.sleep(0.5)
            raise SystemExit("worker lost")
        return value if when == "after_post" else original(self, *args, **kwargs)

    monkeypatch.setattr(Waiter, "start" if when == "after_post" else "wait", crash_once)
    result = run_dag(_single(f"df_retry_{when}", make_dag, [Dataflow("Sales ETL")], retries=1,
                             retry_delay=dt.timedelta(seconds=0)))
    assert result.state == "success", result.logs()
    assert result.ti("refresh").try_number == 2
    assert len(_posts(etl, "dataflow_refresh")) == 1
    [record] = result.xcom("refresh")
    assert (record["kind"], record["status"]) == ("dataflow", "Completed")
    assert not _posts(etl, "dataflow_cancel")


def test_a_timeout_cancels_the_dataflow_transaction_the_task_started(etl: Any, make_dag: Any, run_dag: Any) -> None:
    etl.set_dataflow_refresh("Sales ETL", duration=30.0)
    result = run_dag(_single("df_timeout", make_dag, [Dataflow("Sales ETL")], timeout=1.5, retries=0))
    assert result.task_states["refresh"] == "failed"
    assert len(_posts(etl, "dataflow_cancel")) == 1
    assert "TimedOut" in result.logs("refresh")


def test_a_transaction_someone_else_runs_is_never_cancelled(etl: Any, make_dag: Any, run_dag: Any) -> None:
    etl.start_external_dataflow_refresh("Sales ETL", duration=30.0)
    result = run_dag(_single("df_attach_timeout", make_dag, [Dataflow("Sales ETL")], if_running="attach",
                             timeout=1.0, retries=0))
    assert result.task_states["refresh"] == "failed"
    assert not _posts(etl, "dataflow_cancel")
    assert not _posts(etl, "dataflow_refresh")


@pytest.fixture
def chain(etl: Any) -> Any:
    """Revenue reads dataflow Sales ETL, which reads dataflow Raw Orders; Costs reads nothing."""
    etl.add_dataflow("Sales", "Raw Orders", duration=0.4)
    etl.link_dataflow("Sales", "Sales ETL", ["Raw Orders"])
    etl.link_dataset("Sales", "Revenue", ["Sales ETL"])
    return etl


def _first(emulator: Any, endpoint: str, path_part: str) -> Any:
    return next(r for r in emulator.requests if r.endpoint == endpoint and path_part in r.path)


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_upstream_refresh_refreshes_the_dataflows_a_model_reads_first_depth_by_depth(
        chain: Any, make_dag: Any, run_dag: Any, deferrable: bool) -> None:
    result = run_dag(_single(f"chain_{deferrable}", make_dag, ["Revenue", "Costs"], upstream="refresh",
                             deferrable=deferrable))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert {n: (r["kind"], r["status"], r["depth"]) for n, r in records.items()} == {
        "Raw Orders": ("dataflow", "Completed", 0), "Sales ETL": ("dataflow", "Completed", 1),
        "Revenue": ("standard", "Completed", 2), "Costs": ("standard", "Completed", 0)}
    raw, etl = records["Raw Orders"], records["Sales ETL"]
    assert etl["start"] >= raw["end"]
    revenue_post = _first(chain, "refresh_post", records["Revenue"]["dataset_id"])
    assert revenue_post.time.isoformat() >= etl["end"]
    assert len(_posts(chain, "dataflow_refresh")) == 2
    assert len(_posts(chain, "refresh_post")) == 2
    logs = result.logs("refresh")
    assert "lineage order" in logs
    assert "DEPTH" in logs


def test_upstream_order_orders_the_selection_without_adding_dataflows(chain: Any, make_dag: Any, run_dag: Any) -> None:
    result = run_dag(_single("chain_order", make_dag, ["Revenue", Dataflow("Raw Orders")], upstream="order"))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert set(records) == {"Revenue", "Raw Orders"}
    assert (records["Raw Orders"]["depth"], records["Revenue"]["depth"]) == (0, 1)
    assert _first(chain, "refresh_post", records["Revenue"]["dataset_id"]).time.isoformat() >= records["Raw Orders"]["end"]
    assert len(_posts(chain, "dataflow_refresh")) == 1


def test_a_failed_upstream_dataflow_leaves_its_models_unrefreshed_and_says_why(
        chain: Any, make_dag: Any, run_dag: Any) -> None:
    chain.set_dataflow_refresh("Raw Orders", outcome="Failed")
    result = run_dag(_single("chain_fail", make_dag, ["Revenue", "Costs"], upstream="refresh", retries=0))
    assert result.task_states["refresh"] == "failed"
    logs = result.logs("refresh")
    assert "dataflow 'Raw Orders'" in logs
    assert "Failed" in logs
    assert "not refreshed" in logs
    assert len(_posts(chain, "dataflow_refresh")) == 1  # Sales ETL never started
    [post] = _posts(chain, "refresh_post")  # Costs reads nothing and is refreshed; Revenue is not
    assert chain.state.dataset("Costs").id in post.path


def test_a_lineage_cycle_fails_the_task_before_any_refresh(chain: Any, make_dag: Any, run_dag: Any) -> None:
    chain.link_dataflow("Sales", "Raw Orders", ["Sales ETL"])
    result = run_dag(_single("chain_cycle", make_dag, ["Revenue"], upstream="refresh", retries=0))
    assert result.task_states["refresh"] == "failed"
    assert "LineageCycleError" in result.logs("refresh")
    assert not _posts(chain, "dataflow_refresh")
    assert not _posts(chain, "refresh_post")


def test_min_interval_skips_a_dataflow_refreshed_moments_ago(etl: Any, make_dag: Any, run_dag: Any) -> None:
    etl.add_dataflow_history("Sales ETL", ago=60.0, duration=30.0)
    result = run_dag(_single("df_min_interval", make_dag, [Dataflow("Sales ETL"), "Revenue"],
                             min_interval=dt.timedelta(hours=1)))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert (records["Sales ETL"]["kind"], records["Sales ETL"]["status"]) == ("dataflow", "Skipped")
    assert "less than min_interval" in records["Sales ETL"]["reason"]
    assert not _posts(etl, "dataflow_refresh")


def test_max_concurrency_counts_dataflows_waiting_for_their_transaction(etl: Any, make_dag: Any, run_dag: Any) -> None:
    """With one slot, the dataset's refresh starts only after the dataflow's transaction ended."""
    etl.set_dataflow_refresh("Sales ETL", duration=1.0)
    result = run_dag(_single("df_slots", make_dag, [Dataflow("Sales ETL"), "Revenue"], max_concurrency=1))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    post = _first(etl, "refresh_post", records["Revenue"]["dataset_id"])
    assert post.time.isoformat() >= records["Sales ETL"]["end"]


def _ordered_attach(chain: Any, make_dag: Any, dag_id: str, external: dict[str, Any]) -> Any:
    """Revenue (reading Sales ETL) is busy with a scheduled refresh when the task plans: upstream="order",
    if_running="attach", selecting both."""
    def body() -> None:
        from pbi_taskflow import powerbi_refresh

        @powerbi_refresh(task_id="refresh", workspace="Sales", upstream="order", if_running="attach", retries=0)
        def refresh() -> list[Any]:
            # started by the task's own function, so it still runs when the task plans however slow the machine
            external.update(chain.start_external_refresh("Revenue", duration=0.8))
            return ["Revenue", Dataflow("Sales ETL")]

        refresh()

    return make_dag(dag_id, body)


def test_upstream_order_does_not_attach_a_model_to_a_refresh_older_than_its_failed_upstream(
        chain: Any, make_dag: Any, run_dag: Any) -> None:
    """A model busy with someone else's refresh is not reported through it when the dataflow it reads then fails:
    that refresh started before the dataflow's, so the model ends Skipped naming the dataflow, with no request of
    its own and no cancel."""
    chain.set_dataflow_refresh("Sales ETL", outcome="Failed")
    external: dict[str, Any] = {}
    result = run_dag(_ordered_attach(chain, make_dag, "order_attach_fail", external))
    assert result.task_states["refresh"] == "failed"
    records = _by_name(result.xcom("refresh"))
    assert records["Sales ETL"]["status"] == "Failed"
    assert records["Revenue"]["status"] == "Skipped"
    assert "dataflow 'Sales ETL'" in records["Revenue"]["reason"]
    assert not _posts(chain, "refresh_post")
    assert not _posts(chain, "cancel")
    assert "instead of attaching" in result.logs("refresh")


def test_upstream_order_refreshes_a_busy_model_after_its_upstream_instead_of_attaching(
        chain: Any, make_dag: Any, run_dag: Any) -> None:
    """With its upstream dataflow completed, the busy model gets its own refresh, sent once the other caller's
    refresh has ended and after the dataflow's: the one its result reports."""
    external: dict[str, Any] = {}
    result = run_dag(_ordered_attach(chain, make_dag, "order_attach_ok", external))
    assert result.state == "success", result.logs()
    records = _by_name(result.xcom("refresh"))
    assert records["Sales ETL"]["status"] == "Completed"
    revenue = records["Revenue"]
    assert revenue["status"] == "Completed"
    assert revenue["refresh_id"] != external["request_id"]
    [post] = _posts(chain, "refresh_post")
    assert post.time >= external["end"]
    assert post.time.isoformat() >= records["Sales ETL"]["end"]
    assert not _posts(chain, "cancel")
