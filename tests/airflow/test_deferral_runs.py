"""When a deferrable task defers: at once, or after waiting in the worker for refreshes history says end soon.

Real ``dag.test()`` against the HTTPS emulator; ``running trigger in line`` in the task log is ``dag.test()``
running the trigger, i.e. the task deferred.
"""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow import powerbi_refresh

pytestmark = pytest.mark.integration

FAST = {"poll_interval": 0.1, "max_poll_interval": 0.5}
DEFERRED = "running trigger in line"
WORKER_FIRST = "waiting for them in the worker"


def _dag(make_dag: Any, dag_id: str, names: list[str]) -> Any:
    def body() -> None:
        @powerbi_refresh(workspace="Sales", deferrable=True, **FAST)
        def refresh() -> list[str]:
            return names

        refresh()

    return make_dag(dag_id, body)


def _statuses(result: Any) -> dict[str, str]:
    return {r["dataset_name"]: r["status"] for r in result.xcom("refresh")}


def _assert_deferred_at_once(result: Any) -> None:
    assert result.state == "success", result.logs()
    assert DEFERRED in result.logs()
    assert WORKER_FIRST not in result.logs()


def test_refreshes_history_says_end_soon_are_waited_for_in_the_worker(
    sales: Any, make_dag: Any, run_dag: Any
) -> None:
    """With a history of sub-second refreshes the deferrable task never defers: it waits in the worker."""
    for name in ("Revenue", "Costs"):
        sales.add_history(name, duration=0.6, ago=3600)
    result = run_dag(_dag(make_dag, "worker_first", ["Revenue", "Costs"]))
    assert result.state == "success", result.logs()
    assert _statuses(result) == {"Revenue": "Completed", "Costs": "Completed"}
    assert WORKER_FIRST in result.logs()
    assert DEFERRED not in result.logs()
    assert sales.count("refresh_post") == 2


def test_without_history_the_task_defers_at_once(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """A dataset refreshed for the first time has no expected duration: the task defers without waiting first."""
    result = run_dag(_dag(make_dag, "no_history", ["Revenue"]))
    _assert_deferred_at_once(result)
    assert _statuses(result) == {"Revenue": "Completed"}


def test_one_dataset_without_history_makes_the_whole_task_defer(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Waiting in the worker needs an expected end for every refresh of the task."""
    sales.add_history("Revenue", duration=0.6, ago=3600)
    result = run_dag(_dag(make_dag, "half_history", ["Revenue", "Costs"]))
    _assert_deferred_at_once(result)


def test_history_of_long_refreshes_defers_at_once(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """Refreshes that usually take longer than ``worker_wait_under`` are deferred at once."""
    sales.add_history("Revenue", duration=600, ago=3600)
    result = run_dag(_dag(make_dag, "long_history", ["Revenue"]))
    _assert_deferred_at_once(result)


def test_worker_wait_under_zero_always_defers(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[pbi_taskflow] worker_wait_under = 0`` turns the wait in the worker off."""
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER", "0")
    sales.add_history("Revenue", duration=0.6, ago=3600)
    result = run_dag(_dag(make_dag, "always_defer", ["Revenue"]))
    _assert_deferred_at_once(result)


def test_a_refresh_slower_than_its_history_is_deferred_after_the_window_and_not_sent_again(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """History says 0.3 s, this refresh takes 4 s and the window is 1 s: the task waits 1 s in the worker, then
    defers and the trigger follows the same refresh to its end (one POST, no cancel)."""
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER", "1")
    sales.add_history("Revenue", duration=0.3, ago=3600)
    sales.set_refresh("Revenue", duration=4.0)
    result = run_dag(_dag(make_dag, "slower_than_history", ["Revenue"]))
    assert result.state == "success", result.logs()
    assert _statuses(result) == {"Revenue": "Completed"}
    logs = result.logs()
    assert logs.index(WORKER_FIRST) < logs.index(DEFERRED)
    assert sales.count("refresh_post") == 1
    assert sales.count("cancel") == 0


def test_an_invalid_worker_wait_under_fails_naming_the_option(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value that is not a number fails the task before any refresh starts, naming the option."""
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER", "soon")
    sales.add_history("Revenue", duration=0.6, ago=3600)
    result = run_dag(_dag(make_dag, "bad_option", ["Revenue"]))
    assert result.state == "failed"
    assert "Invalid [pbi_taskflow] worker_wait_under 'soon'" in result.logs()
    assert sales.count("refresh_post") == 0
