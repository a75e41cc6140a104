"""The refresh loop's promise under faults, each case through real ``dag.test()`` against the emulator: one refresh
per dataset, no healthy refresh cancelled, one truthful result per dataset."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_refresh_policies import _clear_and_rerun, _single

from pbi_taskflow import Refresh

pytestmark = pytest.mark.integration

NO_DELAY = {"retries": 1, "retry_delay": dt.timedelta(seconds=0)}


def _statuses(result: Any) -> dict[str, str]:
    return {r["dataset_name"]: r["status"] for r in result.xcom("refresh")}


def test_wait_false_starts_every_dataset_beyond_max_concurrency(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """wait=False with three datasets and max_concurrency=2: the third starts once a slot frees up; none is dropped
    and every dataset has one record."""
    result = run_dag(_single("nowait_slots", make_dag, ["Revenue", "Costs", "Stock"], wait=False, max_concurrency=2))
    assert result.state == "success", result.logs()
    assert sales.count("refresh_post") == 3
    assert sorted(_statuses(result)) == ["Costs", "Revenue", "Stock"]
    assert "starting them as slots free up" in result.logs("refresh")


def test_wait_false_fails_when_a_refresh_it_saw_end_failed(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """wait=False honours fail_policy for the outcomes it does know (a refresh that failed while others waited)."""
    sales.set_refresh("Revenue", outcome="Failed")
    result = run_dag(_single("nowait_fail", make_dag, ["Revenue", "Costs"], wait=False, max_concurrency=1))
    assert result.task_states["refresh"] == "failed"
    assert _statuses(result)["Revenue"] == "Failed"
    assert sales.count("refresh_post") == 2


def test_wait_false_fails_at_its_timeout_when_an_item_could_not_start(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """wait=False with a timeout: an item still waiting for a slot when the timeout passes is Skipped and the task
    fails (the timeout fails it as with wait=True) naming it; the refresh still running is reported TimedOut and left
    running, not cancelled."""
    sales.set_refresh("Revenue", duration=5.0)
    dag = _single("nowait_timeout", make_dag, ["Revenue", "Costs"], wait=False, max_concurrency=1, timeout=1)
    result = run_dag(dag)
    assert result.task_states["refresh"] == "failed", result.logs()
    records = {r["dataset_name"]: r for r in result.xcom("refresh")}
    assert records["Costs"]["status"] == "Skipped"
    assert records["Costs"]["reason"] == "timed out before it could start"
    assert records["Revenue"]["status"] == "TimedOut"
    assert sales.count("refresh_post") == 1
    assert sales.count("cancel") == 0
    assert "1 dataset(s) never started: 'Costs' (workspace 'Sales', timed out before it could start)" in \
        result.logs("refresh")


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_403_on_status_reads_neither_fails_nor_duplicates(
    sales: Any, make_dag: Any, run_dag: Any, deferrable: bool
) -> None:
    """Two 403 answers to status reads (execution details) say nothing about the refresh: it is watched to its end,
    one POST."""
    sales.set_refresh("Revenue", duration=1.0)
    sales.inject("details", "error", status=403, count=2)
    dag = _single(f"denied_{deferrable}", make_dag, Refresh("Revenue", type="Full"), deferrable=deferrable, **NO_DELAY)
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    assert _statuses(result) == {"Revenue": "Completed"}
    assert sales.count("refresh_post") == 1
    assert "the refresh is not affected" in result.logs("refresh")


def test_persistent_403_on_status_reads_fails_the_try_and_the_retry_reattaches(
    sales: Any, make_dag: Any, run_dag: Any
) -> None:
    """Status reads refused five times in a row fail the try, keeping the refresh recorded: the retry follows the
    same refresh instead of starting a second one."""
    from pbi_taskflow.engine.waiter import DENIED_LIMIT

    sales.set_refresh("Revenue", duration=1.5)
    sales.inject("details", "error", status=403, count=DENIED_LIMIT)
    result = run_dag(_single("denied_retry", make_dag, Refresh("Revenue", type="Full"), **NO_DELAY))
    assert result.state == "success", result.logs()
    assert result.ti("refresh").try_number == 2
    assert "StatusReadDeniedError" in result.logs("refresh")
    assert sales.count("refresh_post") == 1
    assert _statuses(result) == {"Revenue": "Completed"}


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_refresh_ending_before_the_deadline_is_reported_completed_not_cancelled(
    sales: Any, make_dag: Any, run_dag: Any, deferrable: bool
) -> None:
    """A refresh that ends between the last status call and the timeout is read once more at the deadline:
    Completed, no DELETE, task succeeds."""
    sales.set_refresh("Revenue", duration=1.6)
    dag = _single(f"deadline_{deferrable}", make_dag, Refresh("Revenue", type="Full"), timeout=2.2,
                  poll_interval=1.5, max_poll_interval=1.5, deferrable=deferrable)
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    assert _statuses(result) == {"Revenue": "Completed"}
    assert "reading the status of every unfinished refresh once more" in result.logs("refresh")
    assert sales.count("cancel") == 0


def test_a_resumed_try_gets_its_own_deadline(sales: Any, make_dag: Any, run_dag: Any, monkeypatch: Any) -> None:
    """A try that died mid-wait leaves its refresh to the retry, which waits up to its own timeout, not the
    remainder of the first try's."""
    from pbi_taskflow.engine.waiter import Waiter

    sales.set_refresh("Revenue", duration=3.5)
    original, calls = Waiter.wait, {"n": 0}

    def crash_late(self: Waiter, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(2.0)
            raise SystemExit("worker lost")
        return original(self, **kwargs)

    monkeypatch.setattr(Waiter, "wait", crash_late)
    result = run_dag(_single("own_deadline", make_dag, Refresh("Revenue", type="Full"), timeout=2.5, **NO_DELAY))
    assert result.state == "success", result.logs()
    assert _statuses(result) == {"Revenue": "Completed"}
    assert sales.count("refresh_post") == 1
    assert sales.count("cancel") == 0


def test_clearing_a_task_interrupted_mid_wait_refreshes_again(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: Any
) -> None:
    """A try that died mid-wait, then a person clears the task: the new try does not resume the old refresh but
    starts a new one (after the old one ends)."""
    from pbi_taskflow.engine.waiter import Waiter

    sales.set_refresh("Revenue", duration=1.0)
    original, calls = Waiter.wait, {"n": 0}

    def crash_once(self: Waiter, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("worker lost")
        return original(self, **kwargs)

    monkeypatch.setattr(Waiter, "wait", crash_once)
    dag = _single("clear_interrupted", make_dag, "Revenue", retries=0)
    first = run_dag(dag)
    assert first.task_states["refresh"] == "failed"
    assert sales.count("refresh_post") == 1
    [old] = [r.request_id for r in sales.requests if r.endpoint == "refresh_post"]

    [record] = _clear_and_rerun(dag, first.run_id, "refresh")
    assert sales.count("refresh_post") == 2
    assert record["status"] == "Completed"
    assert record["refresh_id"] != old


@pytest.mark.parametrize("enhanced", [False, True], ids=["standard", "enhanced"])
def test_dropped_post_with_history_lag_is_followed_not_resent(
    sales: Any, make_dag: Any, run_dag: Any, enhanced: bool
) -> None:
    """The POST's answer is lost and the refresh shows up in the history only 5 s later: it is found and followed;
    the request is never sent twice."""
    sales.set_refresh("Revenue", duration=2.0, history_lag=5.0)
    sales.inject("refresh_post", "drop_after")
    selection = Refresh("Revenue", type="Full") if enhanced else "Revenue"
    result = run_dag(_single(f"lag_{enhanced}", make_dag, selection))
    assert result.state == "success", result.logs()
    assert sales.count("refresh_post") == 1
    assert _statuses(result) == {"Revenue": "Completed"}
    assert "instead of sending the request again" in result.logs("refresh")


def test_unanswered_post_that_started_nothing_reports_outcome_unknown(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A POST dropped before Power BI saw it, and no refresh in the history within the grace: the dataset fails
    with RefreshOutcomeUnknown; the request is not sent again in that try."""
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__APPEARANCE_GRACE", "1")
    sales.inject("refresh_post", "drop")
    result = run_dag(_single("unknown_outcome", make_dag, ["Revenue", "Costs"], retries=0))
    assert result.task_states["refresh"] == "failed"
    records = {r["dataset_name"]: r for r in result.xcom("refresh")}
    assert records["Revenue"]["error_code"] == "RefreshOutcomeUnknown"
    assert records["Costs"]["status"] == "Completed"
    assert sales.count("refresh_post") == 2  # one per dataset


def test_foreign_refresh_racing_a_dropped_post_is_never_adopted_as_ours_nor_cancelled(
    sales: Any, make_dag: Any, run_dag: Any
) -> None:
    """Our POST is dropped while someone else's refresh starts at that moment: it is not taken for ours; with
    if_running='attach' it is followed as attached and, at the timeout, not cancelled."""
    sales.inject("refresh_post", "race_drop", refresh_type="ViaEnhancedApi")
    sales.set_refresh("Revenue", duration=60)
    dag = _single("race_drop", make_dag, Refresh("Revenue", type="Full", tables=["Sales"]), if_running="attach",
                  timeout=1.5, retries=0)
    result = run_dag(dag)
    assert result.task_states["refresh"] == "failed"
    assert sales.count("refresh_post") == 1
    assert sales.count("cancel") == 0


def test_deferred_task_follows_the_foreign_refresh_its_lost_request_ran_into(
    sales: Any, make_dag: Any, run_dag: Any
) -> None:
    """Deferred: the trigger settles the unanswered request (someone else's refresh is running), attaches to that
    refresh as if_running='attach' says and watches it to its end; it is reported, never cancelled."""
    sales.inject("refresh_post", "race_drop", refresh_type="OnDemand", duration=1.0)
    dag = _single("race_drop_deferred", make_dag, "Revenue", if_running="attach", deferrable=True, timeout=20)
    result = run_dag(dag)
    assert result.state == "success", result.logs()
    [record] = result.xcom("refresh")
    assert record["status"] == "Completed"
    assert "timeout of 20 s passed" not in result.logs("refresh")  # seen ending by the trigger, not at the deadline
    assert sales.count("refresh_post") == 1
    assert sales.count("cancel") == 0


def test_crash_between_post_and_record_makes_the_retry_look_before_sending(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies after Power BI answered the POST but before the answer was recorded: the retry finds the
    refresh in the history (the intent was recorded before sending) and follows it; one POST in all."""
    from pbi_taskflow.airflow.ledger import Ledger

    sales.set_refresh("Revenue", duration=1.5)
    original, saves = Ledger.save, {"n": 0}

    def die_after_post(self: Ledger, run: Any, **kwargs: Any) -> None:
        if sales.count("refresh_post") and not saves["n"]:
            saves["n"] += 1
            raise SystemExit("worker lost")
        original(self, run, **kwargs)

    monkeypatch.setattr(Ledger, "save", die_after_post)
    result = run_dag(_single("crash_post", make_dag, "Revenue", **NO_DELAY))
    assert result.state == "success", result.logs()
    assert saves["n"] == 1
    assert sales.count("refresh_post") == 1
    assert _statuses(result) == {"Revenue": "Completed"}


def test_a_request_that_cannot_be_recorded_first_is_not_sent(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow refuses the record of the next request (e.g. it already failed this try on a missed heartbeat): the
    request is not sent and the try fails saying why; the retry sends it. One POST per dataset in all."""
    from pbi_taskflow.airflow.ledger import Ledger

    store_set, refused = Ledger.save, {"n": 0}

    def refuse_once(self: Ledger, run: Any, *, before_send: bool = False) -> None:
        if before_send and not refused["n"] and sales.count("refresh_post") == 1:
            refused["n"] += 1
            real_set = self.store.set

            def gone(*_: Any, **__: Any) -> None:
                raise RuntimeError("404 Task instance not found")

            self.store.set = gone
            try:
                store_set(self, run, before_send=before_send)
            finally:
                self.store.set = real_set
            return
        store_set(self, run, before_send=before_send)

    monkeypatch.setattr(Ledger, "save", refuse_once)
    result = run_dag(_single("unrecorded", make_dag, ["Revenue", "Costs"], max_concurrency=1, **NO_DELAY))
    assert result.state == "success", result.logs()
    assert refused["n"] == 1
    log = result.logs("refresh")
    assert "Could not record the next refresh request before sending it" in log
    assert "404 Task instance not found" in log
    assert sales.count("refresh_post") == 2  # Revenue's in try 1, Costs' in try 2: never a second one
    assert _statuses(result) == {"Revenue": "Completed", "Costs": "Completed"}


# --- SIGTERM: a person's kill or a worker shutdown ----------------------------------------------------------------


@pytest.fixture
def sigterm_guard() -> Iterator[None]:
    """Keep a stray SIGTERM from ending the test process (the task runner installs its own handler while it runs)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sigterm_when_started(emulator: Any, dag_id: str, *, mark_failed: bool) -> threading.Thread:
    """Once the refresh started, optionally mark the task failed in Airflow's DB (what the UI does), then SIGTERM."""

    def act() -> None:
        deadline = time.monotonic() + 30
        while not emulator.count("refresh_post") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        if mark_failed:
            from airflow.models.taskinstance import TaskInstance
            from airflow.utils.session import create_session
            from airflow.utils.state import TaskInstanceState

            with create_session() as session:
                for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, task_id="refresh"):
                    ti.state = TaskInstanceState.FAILED
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


@pytest.mark.usefixtures("sigterm_guard")
def test_worker_shutdown_leaves_refreshes_running_for_the_retry(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """SIGTERM while Airflow still counts the task as running (warm shutdown, pod eviction): nothing is cancelled,
    and the retry follows the same refresh to Completed."""
    sales.set_refresh("Revenue", duration=2.0)
    dag = _single("shutdown", make_dag, Refresh("Revenue", type="Full"), **NO_DELAY)
    thread = _sigterm_when_started(sales, "shutdown", mark_failed=False)
    result = run_dag(dag)
    thread.join(5)
    assert sales.count("cancel") == 0
    assert sales.count("refresh_post") == 1
    assert result.state == "success", result.logs()
    assert result.ti("refresh").try_number == 2
    assert _statuses(result) == {"Revenue": "Completed"}
    assert "not a person" in result.logs("refresh")


@pytest.mark.usefixtures("sigterm_guard")
def test_a_persons_kill_cancels_the_enhanced_refresh_it_started(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """The task marked failed in Airflow, then SIGTERM: the enhanced refresh it started is cancelled."""
    sales.set_refresh("Revenue", duration=60)
    dag = _single("person_kill", make_dag, Refresh("Revenue", type="Full"), retries=0)
    thread = _sigterm_when_started(sales, "person_kill", mark_failed=True)
    result = run_dag(dag)
    thread.join(5)
    assert result.task_states["refresh"] == "failed"
    assert sales.count("cancel") == 1
    assert "Task stopped in Airflow (now failed): cancelling the 1 Power BI refresh(es)" in result.logs("refresh")
