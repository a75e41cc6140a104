"""Unit tests for pbi_taskflow.engine.run and pbi_taskflow.engine.policy: plain-value forms, merging, history facts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pbi_taskflow.client.models import (
    Handle,
    HistoryEntry,
    RefreshObject,
    RefreshOptions,
    RefreshResult,
    RefreshState,
    RefreshStatus,
    Target,
)
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.engine.run import HistoryFacts, RefreshRun
from pbi_taskflow.engine.targets import (
    merge_targets,
    options_from_dict,
    options_to_dict,
    target_from_dict,
    target_to_dict,
)
from pbi_taskflow.errors import ConfigurationError


def _target(dataset_id: str = "DS-1", objects: tuple[RefreshObject, ...] = ()) -> Target:
    return Target("WS-1", "Sales", dataset_id, "Revenue", RefreshOptions(type="Full", objects=objects))


def test_options_round_trip_through_json() -> None:
    """Refresh options survive the JSON form used in the task state store and trigger payloads."""
    options = RefreshOptions(type="Full", commit_mode="PartialBatch", max_parallelism=3, retry_count=1,
                             objects=(RefreshObject("Fact", "2026"), RefreshObject("Dim")),
                             effective_date="2026-11-27", timeout="01:30:00")
    assert options_from_dict(json.loads(json.dumps(options_to_dict(options)))) == options


def test_target_round_trip() -> None:
    """Targets survive their dict form."""
    target = _target(objects=(RefreshObject("Fact"),))
    assert target_from_dict(json.loads(json.dumps(target_to_dict(target)))) == target


def test_run_round_trip() -> None:
    """A RefreshRun survives its dict form (what the trigger event carries)."""
    run = RefreshRun(pending=[target_to_dict(_target())], deadline=12.5, expected={"DS-1": 30.0})
    assert RefreshRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run


def test_same_dataset_by_name_and_id_merges_after_resolution() -> None:
    """Two requests resolving to one dataset id become one target; whole model wins over tables."""
    merged = merge_targets([_target("ds-1", (RefreshObject("Fact"),)), _target("DS-1")])
    assert len(merged) == 1
    assert merged[0].options.objects == ()


def test_history_facts_find_running_last_success_and_median() -> None:
    """One history read gives the running refresh, the last success and the median duration."""
    entries = [
        HistoryEntry("r3", "ViaApi", RefreshStatus.UNKNOWN, start="2026-11-27T10:00:00Z"),
        HistoryEntry("r2", "Scheduled", RefreshStatus.COMPLETED, start="2026-11-27T08:00:00Z", end="2026-11-27T08:01:00Z"),
        HistoryEntry("r1", "Scheduled", RefreshStatus.COMPLETED, start="2026-11-26T08:00:00Z", end="2026-11-26T08:03:00Z"),
        HistoryEntry("r0", "Scheduled", RefreshStatus.FAILED, start="2026-11-25T08:00:00Z", end="2026-11-25T09:00:00Z"),
    ]
    facts = HistoryFacts.from_entries(entries)
    assert facts.running is not None
    assert facts.running.request_id == "r3"
    assert facts.last_success_end == dt.datetime(2026, 11, 27, 8, 1, tzinfo=dt.timezone.utc)
    assert facts.expected == 120.0


@pytest.mark.parametrize(
    "kwargs",
    [{"poll_min": 10, "poll_max": 5}, {"timeout": 0}, {"max_concurrency": True}, {"if_running": None}],
)
def test_policy_rejects_inconsistent_values(kwargs: dict[str, object]) -> None:
    """RefreshPolicy validates every field with a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        RefreshPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_round_trip_and_timedelta_inputs() -> None:
    """Durations accept timedeltas and the policy survives its dict form."""
    policy = RefreshPolicy(min_interval=dt.timedelta(minutes=5), timeout=dt.timedelta(hours=1))  # type: ignore[arg-type]
    assert (policy.min_interval, policy.timeout) == (300.0, 3600.0)
    assert RefreshPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_completed_datasets_carry_over_to_the_next_try_and_are_skipped_there() -> None:
    """A try's completed results are carried over; the next try skips those targets, keeping their refresh id."""

    done, failed = _target("DS-1"), _target("DS-2")
    first = RefreshRun(results=[
        RefreshResult(done.workspace_id, done.workspace_name, "ds-1", done.dataset_name, "r1", "standard",
                      RefreshStatus.COMPLETED).to_dict(),
        RefreshResult(failed.workspace_id, failed.workspace_name, "DS-2", failed.dataset_name, "r2", "standard",
                      RefreshStatus.FAILED).to_dict(),
    ])
    record = RefreshRun.from_dict(json.loads(json.dumps(RefreshRun(completed=first.carried_over(1)).to_dict())))
    assert not record.resumable
    second = RefreshRun(completed=record.completed)
    assert second.skip_completed([done, failed]) == [failed]
    [skipped] = second.final_results()
    assert skipped.status is RefreshStatus.SKIPPED
    assert skipped.refresh_id == "r1"
    assert skipped.reason == "completed in try 1 of this DAG run (refresh r1)"
    assert len(second.carried_over(2)) == 1
    [(try_number, reused)] = RefreshRun.from_dict(json.loads(json.dumps(second.to_dict()))).reused_results()
    assert (try_number, reused.refresh_id, reused.status) == (1, "r1", RefreshStatus.COMPLETED)


def test_a_cleared_task_reuses_nothing_completed_before() -> None:
    """Completed refreshes are reusable while max_tries is unchanged (a retry), not after a clear raised it."""
    record = RefreshRun(completed=[{"try": 1, "result": {"dataset_id": "ds-1"}}], max_tries=1)
    assert record.reusable(1) == record.completed  # automatic retry
    assert record.reusable(3) == []  # cleared: Airflow set max_tries = try_number + retries
    assert record.reusable(None) == record.completed  # no max_tries known: behave as a retry
    assert RefreshRun(completed=record.completed).reusable(5) == record.completed  # a record from before max_tries


def _handle(refresh_id: str, kind: str = "standard", *, attached: bool = False) -> Handle:
    return Handle("WS-1", "Sales", refresh_id, f"Dataset {refresh_id}", refresh_id, kind, "2026-12-03T07:00:00+00:00",
                  attached=attached)


def test_timeout_reports_a_refresh_the_history_never_listed_as_outcome_unknown_not_timed_out() -> None:
    """At the timeout, a standard refresh never seen in the history has an unknown outcome; a listed one timed out."""
    handles = [_handle("unlisted"), _handle("running"), _handle("details", "enhanced")]
    run = RefreshRun(active={h.refresh_id: h.to_dict() for h in handles}, seen={"running": "Unknown"})

    def result_of(handle: Handle, state: RefreshState) -> RefreshResult:
        return RefreshResult("WS-1", "Sales", handle.dataset_id, handle.dataset_name, handle.refresh_id,
                             handle.kind, state.status, error_code=state.error_code)

    running = run.time_out(result_of, 60.0)
    by_id = {r["refresh_id"]: r for r in run.results}
    assert by_id["unlisted"]["status"] == "Failed"
    assert by_id["unlisted"]["error_code"] == "RefreshOutcomeUnknown"
    assert "did not list it yet when the task's timeout of 60 s passed" in by_id["unlisted"]["error_message"]
    assert (by_id["running"]["status"], by_id["running"]["error_code"]) == ("TimedOut", "WaitTimeout")
    assert by_id["details"]["status"] == "TimedOut"  # an enhanced refresh is followed through its own details
    assert {h.refresh_id for h in running} == {"unlisted", "running", "details"}
