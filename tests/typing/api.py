"""The public API as DAG authors use it; type-checked by mypy (strict) in test_typing.py, never executed.

Lines marked ``# type: ignore[...]`` must stay errors: the check runs with ``warn_unused_ignores``, so it
fails if one of them starts to type-check.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag, task
from airflow.sdk.bases.decorator import Task
from airflow.sdk.definitions.xcom_arg import XComArg
from typing_extensions import assert_type

from pbi_taskflow import Refresh, RefreshResult, powerbi_context, powerbi_refresh


@powerbi_refresh
def one_dataset() -> str:
    return "Sales"


@powerbi_refresh(workspace="Finance", deferrable=True, if_running="attach", timeout=dt.timedelta(hours=2), retries=2)
def several(region: str) -> list[str]:
    return [f"Sales {region}", "Inventory"]


@powerbi_refresh(conn_id="powerbi_prod", type="full", commit_mode="transactional", max_parallelism=4)
def tables() -> dict[str, list[str] | None]:
    return {"Sales": ["Orders", "Returns"], "Inventory": None}


@powerbi_refresh(workspace="Finance", on_empty="skip", min_interval=3600, poll_interval=10.0)
def enhanced() -> Refresh:
    return Refresh("Sales", tables=["Orders"], partitions={"Orders": ["2026"]}, apply_refresh_policy=False)


@powerbi_refresh(fail_policy="all", cancel_on_kill=False)
def maybe() -> None:
    return None


@task.powerbi_refresh(workspace="Finance", deferrable=True, if_running="attach")
def from_task_namespace() -> list[str]:
    return ["Sales"]


assert_type(one_dataset, Task[[], str])
assert_type(tables, Task[[], dict[str, list[str] | None]])
assert_type(enhanced, Task[[], Refresh])
assert_type(maybe, Task[[], None])
assert_type(from_task_namespace, Task[[], list[str]])
assert_type(several.function("West"), list[str])


@dag(schedule=None)
def nightly() -> None:
    assert_type(one_dataset(), XComArg)
    mapped = several.expand(region=["West", "East"])
    assert_type(mapped, XComArg)
    several.partial(retries=3).expand(region=["North"])
    tables() >> enhanced() >> maybe() >> from_task_namespace()

    several(42)  # type: ignore[arg-type]


nightly()


def read_results(xcom_value: list[dict[str, Any]]) -> list[str]:
    results = [RefreshResult.from_dict(item) for item in xcom_value]
    assert_type(results, list[RefreshResult])
    return [r.dataset_name for r in results if not r.succeeded and r.error_message is not None]


def skip_if_fresh() -> bool:
    pbi = powerbi_context(workspace="Finance")
    return pbi.refreshed_within("Sales", dt.timedelta(hours=1)) and pbi.quota_remaining("Sales") != 0


powerbi_refresh(workspace=42)  # type: ignore[call-overload]
powerbi_refresh(deferrable="yes")  # type: ignore[call-overload]
powerbi_refresh(if_running="attachh")  # type: ignore[call-overload]
Refresh(["Sales"])  # type: ignore[arg-type]
RefreshResult.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]
