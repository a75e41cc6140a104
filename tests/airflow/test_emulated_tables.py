"""A user's test catches a misspelt table: with tables seeded in the emulator, the refresh task fails naming it."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow import Refresh, powerbi_refresh

pytestmark = pytest.mark.integration

FAST = {"poll_interval": 0.1, "max_poll_interval": 0.5}


def test_a_misspelt_table_fails_the_task_naming_it(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Power BI refuses an enhanced refresh naming a missing table; the task fails with that error, the correctly
    spelt task succeeds, and the request log shows the tables each sent."""
    sales.set_tables("Costs", {"Fact": ["Fact-2025"], "Dim": None})

    def body() -> None:
        @powerbi_refresh(workspace="Sales", **FAST)
        def spelt_right() -> Refresh:
            return Refresh("Costs", tables=["Fact", "Dim"])

        @powerbi_refresh(workspace="Sales", **FAST)
        def misspelt() -> dict[str, Any]:
            return {"Costs": ["Fcat"]}

        spelt_right() >> misspelt()

    dag = make_dag("tables", body)
    dag.get_task("misspelt").retries = 0
    result = run_dag(dag)
    assert result.task_states == {"spelt_right": "success", "misspelt": "failed"}
    assert "table 'Fcat'" in result.logs("misspelt")
    sent = [r.body["objects"] for r in sales.requests if r.endpoint == "refresh_post"]
    assert sent == [[{"table": "Fact"}, {"table": "Dim"}], [{"table": "Fcat"}]]
