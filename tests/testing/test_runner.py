"""run_dag / run_task against the session's SQLite Airflow (plain @task DAGs, no Power BI)."""

from __future__ import annotations

import logging

import pytest


def _plain_dag(dag_id: str, *, fail: bool = False):
    from airflow.sdk import Asset, dag, get_current_context, task

    asset = Asset(f"pbi-test://{dag_id}/out")

    @dag(dag_id=dag_id, schedule=None, tags=["test"])
    def plain():
        @task
        def extract() -> dict[str, int]:
            logging.getLogger("pbi_taskflow.test").info("extracted %d rows", 3)
            return {"rows": 3}

        @task(outlets=[asset])
        def load(data: dict[str, int]) -> int:
            if fail:
                raise ValueError("load failed on purpose")
            get_current_context()["outlet_events"][asset].extra = {"rows": data["rows"]}
            return data["rows"] * 2

        @task
        def report(n: int) -> str:
            return f"loaded {n}"

        report(load(extract()))

    return plain()


@pytest.mark.integration
def test_run_dag_collects_states_xcoms_logs_and_asset_events(run_dag):
    """A successful run reports task states, deserialized XComs, per-task log lines and asset events."""
    result = run_dag(_plain_dag("kit_plain_ok"))
    assert result.state == "success"
    assert result.task_states == {"extract": "success", "load": "success", "report": "success"}
    assert result.xcom("extract") == {"rows": 3}
    assert result.xcom("report") == "loaded 6"
    assert "extracted 3 rows" in result.logs("extract")
    assert "extracted 3 rows" not in result.logs("load")
    assert result.asset_events == [
        {"uri": "pbi-test://kit_plain_ok/out", "name": "pbi-test://kit_plain_ok/out", "extra": {"rows": 3},
         "task_id": "load", "map_index": -1}
    ]
    assert result.ti("load").try_number == 1


@pytest.mark.integration
def test_run_dag_reports_failure_without_raising(run_dag):
    """A failing task makes the run fail, downstream tasks upstream_failed, and its traceback is in its log."""
    result = run_dag(_plain_dag("kit_plain_fail", fail=True))
    assert result.state == "failed"
    assert result.task_states["load"] == "failed"
    assert result.task_states["report"] == "upstream_failed"
    assert "load failed on purpose" in result.logs("load")


@pytest.mark.integration
def test_repeated_runs_of_one_dag_get_distinct_run_ids(run_dag):
    """Running the same DAG twice creates two runs instead of colliding on the logical date."""
    dag = _plain_dag("kit_plain_twice")
    first, second = run_dag(dag), run_dag(dag)
    assert first.run_id != second.run_id
    assert first.state == second.state == "success"


@pytest.mark.integration
def test_run_task_runs_upstream_but_not_downstream(run_task):
    """run_task runs the task after its upstream tasks and leaves downstream tasks out of the run."""
    result = run_task(_plain_dag("kit_plain_task"), "load")
    assert result.task_states == {"extract": "success", "load": "success"}
    assert result.xcom("load") == 6


@pytest.mark.integration
def test_run_task_without_upstream_marks_upstream_successful(run_task):
    """With upstream=False the upstream tasks are marked successful without running (no XCom)."""
    result = run_task(_plain_dag("kit_plain_alone"), "extract", upstream=False)
    assert result.task_states == {"extract": "success"}
    assert result.xcom("extract") == {"rows": 3}


def test_run_task_rejects_unknown_task(run_task):
    """An unknown task id fails with a message listing the DAG's tasks."""
    with pytest.raises(KeyError, match="extract"):
        run_task(_plain_dag("kit_plain_unknown"), "nope")


@pytest.mark.integration
def test_captured_logs_hide_masked_secrets(run_dag):
    """A secret registered with Airflow's masker is replaced by *** in the captured log lines."""
    from airflow.sdk import dag, task

    from pbi_taskflow.observability.redact import register_secrets_with_airflow

    register_secrets_with_airflow("planted-secret-4711")

    @dag(dag_id="kit_masking", schedule=None)
    def masking():
        @task
        def leak() -> None:
            logging.getLogger("pbi_taskflow.test").warning("token is planted-secret-4711")

        leak()

    result = run_dag(masking())
    assert "token is ***" in result.logs("leak")
    assert "planted-secret-4711" not in result.logs()


@pytest.mark.integration
def test_conf_logical_date_and_mapped_xcoms(run_dag):
    """conf and logical_date reach the run; mapped XComs come back per map index or as a list."""
    from datetime import datetime, timezone

    from airflow.sdk import dag, get_current_context, task

    @dag(dag_id="kit_mapped", schedule=None)
    def mapped():
        @task
        def numbers() -> list[int]:
            return list(range(get_current_context()["dag_run"].conf["n"]))

        @task
        def double(x: int) -> int:
            return x * 2

        double.expand(x=numbers())

    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    result = run_dag(mapped(), conf={"n": 3}, logical_date=when)
    assert result.state == "success"
    assert result.logical_date == when
    assert result.xcom("double", map_index=1) == 2
    assert result.xcom("double", map_index=None) == [0, 2, 4]
    assert result.task_states["double"] == "success"
    assert [ti.map_index for ti in result.task_instances if ti.task_id == "double"] == [0, 1, 2]
