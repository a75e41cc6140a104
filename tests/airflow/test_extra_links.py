"""The extra links of real refresh tasks under ``dag.test()``: Airflow stores each link's URL in an XCom when the
task ends, which the UI's buttons read."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow import powerbi_refresh

pytestmark = pytest.mark.integration

FAST = {"poll_interval": 0.1, "max_poll_interval": 0.5}
DATASET_KEY = "_link_PowerBIDatasetLink"
WORKSPACE_KEY = "_link_PowerBIWorkspaceLink"


def test_links_of_a_successful_and_a_failed_task(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """One model: links to it and its workspace. Two models, one failing: links to the failed one."""
    sales.set_refresh("Costs", outcome="Failed")

    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def one() -> str:
            return "Revenue"

        @powerbi_refresh(workspace="Sales", **FAST)
        def two() -> list[str]:
            return ["Stock", "Costs"]

        one()
        two()

    result = run_dag(make_dag("links", body))
    assert result.task_states == {"one": "success", "two": "failed"}, result.logs()
    [revenue] = result.xcom("one")
    ws = revenue["workspace_id"]
    assert result.xcom("one", key=DATASET_KEY) == revenue["web_url"]
    assert revenue["web_url"] == f"https://app.powerbi.com/groups/{ws}/datasets/{revenue['dataset_id']}/details"
    assert result.xcom("one", key=WORKSPACE_KEY) == f"https://app.powerbi.com/groups/{ws}/list"
    costs = next(r for r in result.xcom("two") if r["dataset_name"] == "Costs")
    assert result.xcom("two", key=DATASET_KEY) == costs["web_url"]
    assert result.xcom("two", key=WORKSPACE_KEY) == f"https://app.powerbi.com/groups/{ws}/list"
    logs = result.logs("two")
    assert "Open in Power BI:" in logs
    for record in result.xcom("two"):
        assert f"Sales / {record['dataset_name']}: {record['web_url']}" in logs


def test_a_task_failing_before_any_refresh_has_no_links(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """A name that does not exist: the task fails with no result, and its buttons have no URL."""
    def body() -> None:
        @powerbi_refresh(workspace="Sales", retries=0, **FAST)
        def missing() -> str:
            return "No Such Model"

        missing()

    result = run_dag(make_dag("links_none", body))
    assert result.task_states == {"missing": "failed"}
    assert result.xcom("missing", key=DATASET_KEY) in (None, "")
    assert result.xcom("missing", key=WORKSPACE_KEY) in (None, "")
