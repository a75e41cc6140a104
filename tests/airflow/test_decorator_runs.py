"""The ``@powerbi_refresh`` decorator under real ``dag.test()`` against the HTTPS emulator.

Return shapes, both decorator spellings, worker polling and deferral, name errors, ``.expand()``,
``-> dict`` annotations and asset events.
"""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow import Refresh, powerbi_refresh

pytestmark = pytest.mark.integration

FAST = {"poll_interval": 0.1, "max_poll_interval": 0.5}


def _names(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((r["dataset_name"], r["status"]) for r in results)


def test_every_return_shape_refreshes_the_selected_datasets(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Name, id, Refresh with tables, mapping and mixed list each refresh exactly what they select."""
    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def by_name() -> str:
            return "revenue"

        @powerbi_refresh(workspace="Sales", **FAST)
        def as_refresh() -> Refresh:
            return Refresh("Costs", tables=["Fact"], type="Full")

        @powerbi_refresh(workspace="Sales", **FAST)
        def as_mapping() -> dict[str, Any]:
            return {"Stock": None, "Costs": ["Dim"]}

        @powerbi_refresh(workspace="Sales", **FAST)
        def mixed() -> list[Any]:
            return ["Revenue", Refresh("Stock"), {"revenue": ["Fact"]}]

        @powerbi_refresh(workspace="Sales", **FAST)
        def nothing() -> None:
            return None

        by_name() >> as_refresh() >> as_mapping() >> mixed() >> nothing()

    result = run_dag(make_dag("shapes", body))
    assert result.state == "success", result.logs()
    assert _names(result.xcom("by_name")) == [("Revenue", "Completed")]
    [costs] = result.xcom("as_refresh")
    assert (costs["dataset_name"], costs["kind"], costs["status"]) == ("Costs", "enhanced", "Completed")
    assert _names(result.xcom("as_mapping")) == [("Costs", "Completed"), ("Stock", "Completed")]
    assert _names(result.xcom("mixed")) == [("Revenue", "Completed"), ("Stock", "Completed")]
    assert result.task_states["nothing"] == "skipped"
    uris = {e["uri"] for e in result.asset_events}
    assert all(u.startswith("powerbi://") for u in uris)
    assert len(result.asset_events) == 6
    extras = [e["extra"] for e in result.asset_events]
    assert {"dataset_name", "workspace_name", "status", "refresh_id"} <= set(extras[0])


def test_dataset_id_is_accepted(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """A dataset id selects the same dataset as its name."""
    created = sales.add_dataset("Sales", "ById", duration=0.3)

    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def by_id() -> str:
            return str(created["id"])

        by_id()

    result = run_dag(make_dag("by_id", body))
    assert result.state == "success", result.logs()
    assert _names(result.xcom("by_id")) == [("ById", "Completed")]


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_both_wait_modes_wait_for_the_outcome(sales: Any, make_dag: Any, run_dag: Any, deferrable: bool) -> None:
    """Worker polling and deferral both return the final status of every dataset."""

    def body() -> None:
        @powerbi_refresh(workspace="Sales", deferrable=deferrable, **FAST)
        def refresh() -> list[str]:
            return ["Revenue", "Costs"]

        refresh()

    result = run_dag(make_dag(f"modes_{deferrable}", body))
    assert result.state == "success", result.logs()
    assert _names(result.xcom("refresh")) == [("Costs", "Completed"), ("Revenue", "Completed")]
    assert ("running trigger in line" in result.logs()) is deferrable
    assert sales.count("refresh_post") == 2


def test_wait_false_returns_right_after_starting(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """With wait=False the task records the started refreshes and does not poll them."""
    sales.set_refresh("Revenue", duration=30)

    def body() -> None:
        @powerbi_refresh(workspace="Sales", wait=False, **FAST)
        def fire() -> str:
            return "Revenue"

        fire()

    result = run_dag(make_dag("fire", body))
    assert result.state == "success", result.logs()
    [record] = result.xcom("fire")
    assert record["refresh_id"]
    assert record["status"] == "NotStarted"
    assert sales.count("details") == 0


def test_task_decorator_spelling_is_the_same_decorator(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """@task.powerbi_refresh and bare @powerbi_refresh (defaults from the [pbi_taskflow] config) both work."""
    from airflow.sdk import task

    def body() -> None:
        @task.powerbi_refresh(workspace="Sales", **FAST)
        def via_task() -> str:
            return "Revenue"

        @powerbi_refresh
        def bare() -> Refresh:
            return Refresh("Costs", "Sales")

        via_task() >> bare()

    dag = make_dag("spellings", body)
    assert dag.task_dict["via_task"].custom_operator_name == "@task.powerbi_refresh"
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    assert _names(result.xcom("via_task")) == [("Revenue", "Completed")]
    assert _names(result.xcom("bare")) == [("Costs", "Completed")]


def test_expand_maps_one_task_per_dataset(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Dynamic task mapping over dataset names works like any TaskFlow task."""

    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def one(name: str) -> str:
            return name

        one.expand(name=["Revenue", "Stock"])

    result = run_dag(make_dag("expanded", body))
    assert result.state == "success", result.logs()
    per_index = result.xcom("one", map_index=None)
    assert [_names(x) for x in per_index] == [[("Revenue", "Completed")], [("Stock", "Completed")]]


def test_dict_annotation_keeps_one_return_value(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """A ``-> dict`` annotation does not switch on multiple_outputs: one list-valued return_value."""

    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def annotated() -> dict:  # type: ignore[type-arg]
            return {"Revenue": None}

        annotated()

    dag = make_dag("annotated", body)
    assert dag.task_dict["annotated"].multiple_outputs is False
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    assert isinstance(result.xcom("annotated"), list)
    assert result.xcom("annotated", key="Revenue") is None


def test_upstream_xcom_selects_datasets(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """The function receives upstream XComs and returns the datasets whose tables changed."""
    from airflow.sdk import task

    def body() -> None:
        @task
        def changed() -> dict[str, list[str]]:
            return {"Revenue": ["Fact"], "Costs": []}

        @powerbi_refresh(workspace="Sales", **FAST)
        def refresh(changes: dict[str, list[str]]) -> list[str]:
            return [name for name, tables in changes.items() if tables]

        refresh(changed())

    result = run_dag(make_dag("upstream", body))
    assert result.state == "success", result.logs()
    assert _names(result.xcom("refresh")) == [("Revenue", "Completed")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Nope", "UnknownNameError"), ("Twin", "AmbiguousNameError")],
    ids=["unknown", "ambiguous"],
)
def test_name_errors_fail_before_any_refresh(
    sales: Any, make_dag: Any, run_dag: Any, value: str, expected: str
) -> None:
    """Unknown or ambiguous names fail the task with the candidates listed, before any refresh starts."""
    sales.add_dataset("Sales", "Twin")
    sales.add_dataset("Sales", "twin")

    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def refresh() -> list[str]:
            return ["Revenue", value]

        refresh()

    result = run_dag(make_dag(f"names_{expected}", body))
    assert result.task_states["refresh"] == "failed"
    logs = result.logs("refresh")
    assert expected in logs
    assert value in logs
    assert sales.count("refresh_post") == 0


def test_bad_return_value_fails_with_the_accepted_shapes(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Returning an unsupported value fails with a TypeError naming the accepted shapes."""

    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def refresh() -> int:
            return 42

        refresh()

    result = run_dag(make_dag("bad_shape", body))
    assert result.task_states["refresh"] == "failed"
    assert "TypeError" in result.logs("refresh")
    assert "a mapping {dataset:" in result.logs("refresh")


def test_templated_workspace_and_conn_id_render_at_run_time(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """workspace and conn_id are templated fields, rendered from the run's conf."""

    def body() -> None:
        @powerbi_refresh(workspace="{{ dag_run.conf['ws'] }}", conn_id="{{ dag_run.conf['conn'] }}", **FAST)
        def refresh() -> str:
            return "Stock"

        refresh()

    result = run_dag(make_dag("templated", body), conf={"ws": "Sales", "conn": "powerbi_default"})
    assert result.state == "success", result.logs()
    [record] = result.xcom("refresh")
    assert (record["workspace_name"], record["dataset_name"]) == ("Sales", "Stock")
