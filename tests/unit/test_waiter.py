"""Unit tests for the waiter's handling of one status answer (pbi_taskflow.engine.waiter.apply_observation)."""

from __future__ import annotations

import logging

import pytest

from pbi_taskflow.client.api import result_from
from pbi_taskflow.client.models import Handle, RefreshState, RefreshStatus
from pbi_taskflow.engine.run import RefreshRun
from pbi_taskflow.engine.schedule import PollSchedule, WatchPlan
from pbi_taskflow.engine.waiter import apply_observation
from pbi_taskflow.errors import InvalidSecretError, NotFoundError, ServerError, ThrottledError

LOG = logging.getLogger("test.waiter")


def _setup(kind: str = "standard") -> tuple[RefreshRun, WatchPlan]:
    handle = Handle("ws", "Sales", "ds", "Revenue", "r1", kind, "2026-11-27T10:00:00+00:00")
    run = RefreshRun(active={"r1": handle.to_dict()}, started={"r1": 0.0})
    plan = WatchPlan(schedules={"r1": PollSchedule(min_interval=5, appearance_grace=60)}, started={"r1": 0.0})
    return run, plan


def test_terminal_state_becomes_a_result() -> None:
    """A terminal state moves the refresh from active to results."""
    run, plan = _setup()
    changed = apply_observation(run, plan, "r1", 10.0, RefreshState(RefreshStatus.COMPLETED), LOG, result_from)
    assert changed
    assert run.done
    assert run.final_results()[0].status is RefreshStatus.COMPLETED


@pytest.mark.parametrize("error", [ThrottledError("slow down", retry_after=30), ServerError("boom", status=503)])
def test_transient_errors_only_delay_the_next_call(error: Exception) -> None:
    """Throttling and 5xx keep the refresh watched; Retry-After pushes the next call out."""
    run, plan = _setup()
    assert not apply_observation(run, plan, "r1", 10.0, error, LOG, result_from)  # type: ignore[arg-type]
    assert "r1" in run.active
    assert plan.next_due() is not None
    assert plan.next_due() >= 10.0 + (30 if isinstance(error, ThrottledError) else 5)


def test_throttles_are_counted_in_the_result() -> None:
    """Each 429 that reaches the waiter is counted in the refresh's result, with the seconds it asked to wait."""
    run, plan = _setup()
    apply_observation(run, plan, "r1", 10.0, ThrottledError("slow", retry_after=1), LOG, result_from)
    apply_observation(run, plan, "r1", 20.0, RefreshState(RefreshStatus.COMPLETED), LOG, result_from)
    assert run.final_results()[0].throttle_count == 1
    assert run.throttled_s(run.final_results()[0].dataset_id) == 1.0


def test_throttles_the_client_absorbed_reach_the_result() -> None:
    """429s a client retried by itself (per dataset) are moved into the run and counted in that dataset's result."""
    run, plan = _setup()
    dataset_id = run.watched_handle("r1").dataset_id

    class Client:
        def take_throttles(self) -> dict[tuple[str, str], list[float]]:
            return {("ws", dataset_id): [2, 3.0]}

    run.absorb(Client())
    apply_observation(run, plan, "r1", 20.0, RefreshState(RefreshStatus.COMPLETED), LOG, result_from)
    assert run.final_results()[0].throttle_count == 2
    assert run.throttled_s(dataset_id) == 3.0
    assert RefreshRun.from_dict(run.to_dict()).throttles == run.throttles


def test_other_errors_fail_that_refresh_with_the_power_bi_text() -> None:
    """A non-transient status error ends the watch with a failed result carrying the error."""
    run, plan = _setup()
    apply_observation(run, plan, "r1", 10.0, NotFoundError("gone", code="ItemNotFound"), LOG, result_from)
    [result] = run.final_results()
    assert (result.status, result.error_code, result.error_message) == (RefreshStatus.FAILED, "ItemNotFound", "gone")


def test_credential_errors_propagate() -> None:
    """Authentication failures stop the whole task instead of failing one dataset."""
    run, plan = _setup()
    with pytest.raises(InvalidSecretError):
        apply_observation(run, plan, "r1", 10.0, InvalidSecretError("bad secret"), LOG, result_from)


def test_standard_refresh_missing_after_the_grace_fails_without_resending() -> None:
    """A standard refresh still absent from the history after the grace period counts as dropped."""
    run, plan = _setup()
    not_started = RefreshState(RefreshStatus.NOT_STARTED)
    assert not apply_observation(run, plan, "r1", 30.0, not_started, LOG, result_from)
    assert apply_observation(run, plan, "r1", 61.0, not_started, LOG, result_from)
    [result] = run.final_results()
    assert result.status is RefreshStatus.FAILED
    assert "did not appear in the refresh history" in (result.error_message or "")
