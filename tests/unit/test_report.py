"""The task's verdict and failure message (:mod:`pbi_taskflow.airflow.report`): pure functions over results."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.airflow.report import failure_message, verdict
from pbi_taskflow.client.models import RefreshResult, RefreshStatus


def _result(name: str, status: RefreshStatus, **fields: Any) -> RefreshResult:
    fields = {"refresh_id": None, "kind": "standard", **fields}
    return RefreshResult(workspace_id="w", workspace_name="Sales", dataset_id=name.lower(), dataset_name=name,
                         status=status, **fields)


COMPLETED = _result("Revenue", RefreshStatus.COMPLETED, refresh_id="r1")
FAILED = _result("Costs", RefreshStatus.FAILED, refresh_id="r2", error_code="ModelRefreshFailed")
UNSTARTED = _result("Stock", RefreshStatus.SKIPPED, reason="timed out before it could start")


@pytest.mark.parametrize(("results", "policy", "fails"), [
    ([COMPLETED, FAILED], "any", True),
    ([COMPLETED, FAILED], "all", False),
    ([FAILED], "all", True),
    ([COMPLETED, UNSTARTED], "any", False),  # a Skipped result alone is no failure; the timeout decides that
])
def test_verdict_follows_fail_policy(results: list[RefreshResult], policy: str, fails: bool) -> None:
    """fail_policy 'any' fails on one failed result, 'all' only when every result that ran failed."""
    assert verdict(results, policy) is fails


def test_timeout_message_names_the_items_that_never_started() -> None:
    """A timeout that only left an item unstarted says so and names it, instead of "failed for 0 of 1"."""
    message = failure_message([COMPLETED, UNSTARTED], timed_out=True, waited=0.35)
    assert message == ("Power BI refresh stopped at the task's timeout of 0.35 s: 1 dataset(s) never started: "
                       "'Stock' (workspace 'Sales', timed out before it could start)")


def test_timeout_message_lists_failures_then_unstarted_items() -> None:
    """Failed items come first with their Power BI error, then the items that never started."""
    message = failure_message([FAILED, UNSTARTED], timed_out=True, waited=3600)
    assert message.startswith("Power BI refresh failed for 1 of 1 dataset(s); stopped waiting after the task's "
                              "timeout of 3600 s: 'Costs' (workspace 'Sales', refresh r2): Failed - ModelRefreshFailed")
    assert message.endswith("; 1 dataset(s) never started: 'Stock' (workspace 'Sales', timed out before it could "
                            "start)")


def test_message_without_timeout_names_each_failure() -> None:
    assert failure_message([COMPLETED, FAILED]) == (
        "Power BI refresh failed for 1 of 2 dataset(s): 'Costs' (workspace 'Sales', refresh r2): Failed - "
        "ModelRefreshFailed")
