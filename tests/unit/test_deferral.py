"""pbi_taskflow.airflow.deferral and RefreshRun.expected_end: whether a deferrable task waits in the worker first."""

from __future__ import annotations

import logging

import pytest

from pbi_taskflow.airflow.deferral import TRIGGER_SETTLE, WORKER_WAIT_UNDER, Deferral
from pbi_taskflow.client.models import Handle
from pbi_taskflow.engine.run import RefreshRun
from pbi_taskflow.errors import ConfigurationError

LOG = logging.getLogger("test.deferral")


def _handle(dataset: str, refresh_id: str) -> Handle:
    return Handle("ws", "Sales", dataset, dataset.title(), refresh_id, "standard", "2026-12-03T10:00:00+00:00")


def _run(**expected: float) -> RefreshRun:
    """Refreshes of datasets ``a`` (started at 100) and ``b`` (started at 104), with the expected durations given."""
    run = RefreshRun(expected=dict(expected))
    run.remember(_handle("a", "r-a"), 100.0)
    run.remember(_handle("b", "r-b"), 104.0)
    return run


def test_expected_end_is_the_latest_start_plus_expected_duration() -> None:
    """Each refresh ends at its start plus its dataset's median duration; the run ends with the last of them."""
    assert _run(a=10.0, b=3.0).expected_end() == 110.0
    assert _run(a=2.0, b=3.0).expected_end() == 107.0


def test_expected_end_is_unknown_when_one_dataset_has_no_history() -> None:
    assert _run(a=10.0).expected_end() is None


def test_expected_end_is_unknown_while_a_target_waits_for_a_slot_or_another_callers_refresh() -> None:
    run = _run(a=1.0, b=1.0)
    run.pending.append({"dataset_id": "c"})
    assert run.expected_end() is None
    run = _run(a=1.0, b=1.0)
    run.blockers["x"] = {"handle": _handle("c", "x").to_dict(), "target": {}}
    assert run.expected_end() is None


def test_expected_end_is_unknown_with_nothing_watched() -> None:
    assert RefreshRun(expected={"a": 1.0}).expected_end() is None


def test_worker_wait_until_waits_the_whole_window_for_refreshes_due_within_it() -> None:
    """Refreshes due 7 s from now, window 20 s: wait in the worker until now + 20 s (a refresh may run late)."""
    assert Deferral(worker_wait_under=20.0).worker_wait_until(_run(a=2.0, b=3.0), 100.0, LOG) == 120.0


def test_worker_wait_until_defers_refreshes_due_after_the_window() -> None:
    assert Deferral(worker_wait_under=20.0).worker_wait_until(_run(a=60.0, b=3.0), 100.0, LOG) is None


def test_worker_wait_until_defers_without_history() -> None:
    assert Deferral(worker_wait_under=20.0).worker_wait_until(_run(a=2.0), 100.0, LOG) is None


@pytest.mark.parametrize("window", [0.0, -5.0])
def test_a_window_of_zero_or_less_always_defers(window: float) -> None:
    assert Deferral(worker_wait_under=window).worker_wait_until(_run(a=1.0, b=1.0), 100.0, LOG) is None


def test_worker_wait_until_logs_why_the_task_does_not_defer(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOG.name):
        Deferral(worker_wait_under=20.0).worker_wait_until(_run(a=2.0, b=3.0), 100.0, LOG)
    assert "end within 7 s: waiting for them in the worker" in caplog.text
    assert "[pbi_taskflow] worker_wait_under" in caplog.text


def test_from_config_reads_both_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__PBI_TASKFLOW__TRIGGER_SETTLE", raising=False)
    monkeypatch.delenv("AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER", raising=False)
    assert Deferral.from_config() == Deferral(settle=TRIGGER_SETTLE, worker_wait_under=WORKER_WAIT_UNDER)
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__TRIGGER_SETTLE", "4")
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER", "45")
    assert Deferral.from_config() == Deferral(settle=4.0, worker_wait_under=45.0)


def test_from_config_names_an_option_that_is_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER", "soon")
    with pytest.raises(ConfigurationError, match=r"worker_wait_under 'soon'.*AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER"):
        Deferral.from_config()
