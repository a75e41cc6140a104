"""Unit tests for lineage-ordered starts in pbi_taskflow.engine.run: a pending item starts only once everything it
reads ended well, an item whose upstream failed ends Skipped naming it, and dataflow targets travel as plain values.
The client is a pytest-mock stand-in: the logic under test is the run's, not Power BI's."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pbi_taskflow.client.models import (
    Dataflow,
    Handle,
    HistoryEntry,
    RefreshResult,
    RefreshState,
    RefreshStatus,
    Target,
)
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.engine.probe import Probe, find
from pbi_taskflow.engine.run import RefreshRun
from pbi_taskflow.engine.targets import skipped, target_from_dict, target_to_dict

FLOW = Target("ws-1", "Finance", "DF-1", "Sales ETL", Dataflow("Sales ETL").options, item="dataflow")
MODEL = Target("ws-1", "Finance", "DS-1", "Sales")
COMPOSITE = Target("ws-1", "Finance", "DS-2", "Sales Composite")
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)


def _chain_run() -> RefreshRun:
    run = RefreshRun(pending=[target_to_dict(t) for t in (COMPOSITE, MODEL, FLOW)],
                     after={"ds-1": ["df-1"], "ds-2": ["ds-1"]}, depths={"df-1": 0, "ds-1": 1, "ds-2": 2})
    return run


def _result(target: Target, status: RefreshStatus) -> dict[str, Any]:
    kind = "dataflow" if target.is_dataflow else "standard"
    return RefreshResult(target.workspace_id, target.workspace_name, target.dataset_id, target.dataset_name, "r-1",
                         kind, status).to_dict()


def _client(mocker: Any) -> Any:
    client = mocker.Mock()
    client.start_dataflow.return_value = NOW
    client.trigger_refresh.side_effect = lambda t: Handle(t.workspace_id, t.workspace_name, t.dataset_id,
                                                         t.dataset_name, "r-" + t.dataset_id, "standard",
                                                         NOW.isoformat())
    return client


def test_only_the_item_that_reads_nothing_pending_starts_first(mocker: Any) -> None:
    run, client = _chain_run(), _client(mocker)
    run.start_pending(client, RefreshPolicy(max_concurrency=8), 0.0, lambda: None)
    client.start_dataflow.assert_called_once_with(FLOW)
    client.trigger_refresh.assert_not_called()
    [probe] = run.probes.values()
    assert Probe.from_dict(probe).accepted
    assert probe["requested_at"] == NOW.isoformat()
    assert [t["dataset_id"] for t in run.pending] == ["DS-2", "DS-1"]
    assert not run.startable(RefreshPolicy(max_concurrency=8))


def test_a_model_starts_once_its_dataflow_completed_and_its_composite_after_it(mocker: Any) -> None:
    run, client = _chain_run(), _client(mocker)
    run.pending.remove(target_to_dict(FLOW))
    run.results.append(_result(FLOW, RefreshStatus.COMPLETED))
    assert run.startable(RefreshPolicy(max_concurrency=8))
    run.start_pending(client, RefreshPolicy(max_concurrency=8), 0.0, lambda: None)
    [called] = [c.args[0] for c in client.trigger_refresh.call_args_list]
    assert called.dataset_id == "DS-1"
    assert [t["dataset_id"] for t in run.pending] == ["DS-2"]


def test_a_skipped_upstream_counts_as_ended_well(mocker: Any) -> None:
    run, client = _chain_run(), _client(mocker)
    run.pending.remove(target_to_dict(FLOW))
    run.results.append(skipped(FLOW, "refreshed 10 s ago, less than min_interval").to_dict())
    run.start_pending(client, RefreshPolicy(max_concurrency=8), 0.0, lambda: None)
    assert client.trigger_refresh.call_count == 1


def test_a_failed_upstream_skips_everything_downstream_naming_it(mocker: Any) -> None:
    run, client = _chain_run(), _client(mocker)
    run.pending.remove(target_to_dict(FLOW))
    run.results.append(_result(FLOW, RefreshStatus.FAILED))
    run.start_pending(client, RefreshPolicy(max_concurrency=8), 0.0, lambda: None)
    client.trigger_refresh.assert_not_called()
    assert not run.pending
    by_id = {r.dataset_id: r for r in run.final_results()}
    assert by_id["DS-1"].status is RefreshStatus.SKIPPED
    assert "dataflow 'Sales ETL'" in (by_id["DS-1"].reason or "")
    assert "Failed" in (by_id["DS-1"].reason or "")
    assert by_id["DS-2"].status is RefreshStatus.SKIPPED
    assert "dataset 'Sales'" in (by_id["DS-2"].reason or "")
    assert "an item it reads failed" in (by_id["DS-2"].reason or "")
    assert (by_id["DF-1"].depth, by_id["DS-1"].depth, by_id["DS-2"].depth) == (0, 1, 2)
    assert run.done


def test_an_upstream_outside_the_run_does_not_hold_an_item_back(mocker: Any) -> None:
    """An upstream completed by an earlier try (not in this run) does not block its downstream."""
    run, client = RefreshRun(pending=[target_to_dict(MODEL)], after={"ds-1": ["df-1"]}), _client(mocker)
    run.start_pending(client, RefreshPolicy(max_concurrency=8), 0.0, lambda: None)
    assert client.trigger_refresh.call_count == 1


def test_a_dataflow_target_survives_the_json_form_of_the_run() -> None:
    run = RefreshRun.from_dict(json.loads(json.dumps(_chain_run().to_dict())))
    flow = target_from_dict(run.pending[2])
    assert flow == FLOW
    assert flow.is_dataflow
    assert target_from_dict({k: v for k, v in target_to_dict(MODEL).items() if k != "item"}) == MODEL


def test_a_dataflows_own_transaction_is_the_first_unscheduled_one_since_the_request() -> None:
    probe = Probe(FLOW, NOW.isoformat(), 1, known=("t-old",), accepted=True)
    entries = [
        HistoryEntry("t-sched", "Scheduled", RefreshStatus.IN_PROGRESS, start=(NOW + dt.timedelta(seconds=1)).isoformat()),
        HistoryEntry("t-ours", "OnDemand", RefreshStatus.IN_PROGRESS, start=(NOW + dt.timedelta(seconds=1)).isoformat()),
        HistoryEntry("t-old", "OnDemand", RefreshStatus.COMPLETED, start=(NOW - dt.timedelta(hours=1)).isoformat(),
                     end=(NOW - dt.timedelta(minutes=50)).isoformat()),
    ]
    finding = find(probe, entries)
    assert finding.ours is not None
    assert finding.ours.request_id == "t-ours"
    handle = probe.handle("t-ours")
    assert (handle.kind, handle.cancellable, handle.noun) == ("dataflow", True, "dataflow")


def test_a_finished_dataflow_result_names_its_kind(mocker: Any) -> None:
    from pbi_taskflow.client.api import result_from
    from pbi_taskflow.client.clouds import get_cloud

    handle = Probe(FLOW, NOW.isoformat(), 1, accepted=True).handle("t-1")
    result = result_from(handle, RefreshState(RefreshStatus.COMPLETED), get_cloud("public"))
    assert result.kind == "dataflow"
    assert result.noun == "dataflow"
    assert result.web_url == "https://app.powerbi.com/groups/ws-1/dataflows/DF-1"


def test_a_refresh_other_items_wait_for_is_polled_on_a_tighter_ramp() -> None:
    """Without history, a gating refresh is seen within half its length, others within about twice it."""
    from pbi_taskflow.engine.schedule import GATING_RAMP, RAMP

    run, policy = _chain_run(), RefreshPolicy(poll_min=1.0)
    assert run.schedule_for(policy, "DF-1").ramp == GATING_RAMP  # Sales waits for it
    assert run.schedule_for(policy, "DS-2").ramp == RAMP  # nothing reads the composite
    assert run.schedule_for(policy, "DF-1").next_delay(8.0) == 4.0
    assert run.schedule_for(policy, "DS-2").next_delay(8.0) == 14.0  # 16 s, capped at the early gap
    run.pending = [p for p in run.pending if p["dataset_id"] != "DS-1"]
    assert run.schedule_for(policy, "DF-1").ramp == RAMP  # nobody waits for it any more


def test_only_completed_refreshes_carry_over_to_the_next_try() -> None:
    """An item skipped because its upstream failed (or by a policy) was not refreshed: the retry decides again."""
    run = _chain_run()
    run.pending.clear()
    run.results = [_result(FLOW, RefreshStatus.FAILED), skipped(MODEL, "not refreshed: it reads dataflow 'Sales ETL'"
                                                                 " (Finance), whose refresh ended Failed").to_dict(),
                   _result(COMPOSITE, RefreshStatus.COMPLETED)]
    assert [c["result"]["dataset_id"] for c in run.carried_over(1)] == ["DS-2"]


def test_a_retry_reuses_a_refresh_an_earlier_try_started_and_saw_no_end_of(mocker: Any) -> None:
    """A wait=False try that failed left a refresh it started; when it completed, the retry reports it (Skipped,
    completed in that try) instead of starting another."""
    client = _client(mocker)
    client.refresh_history.return_value = [
        HistoryEntry("r-ds-1", "ViaApi", RefreshStatus.COMPLETED, start=NOW.isoformat(),
                     end=(NOW + dt.timedelta(seconds=5)).isoformat())]
    client.result_from.side_effect = lambda h, s, **kw: RefreshResult(
        h.workspace_id, h.workspace_name, h.dataset_id, h.dataset_name, h.refresh_id, h.kind, s.status, **kw)
    run = RefreshRun(ours={"DS-1": ["r-ds-1"]}, started_in={"r-ds-1": 1}, attempt=2)
    run.plan(client, [MODEL], RefreshPolicy(), 0.0)
    assert not run.pending
    [result] = run.final_results()
    assert result.status is RefreshStatus.SKIPPED
    assert result.reason == "completed in try 1 of this DAG run (refresh r-ds-1)"
    assert [(n, r.status) for n, r in run.reused_results()] == [(1, RefreshStatus.COMPLETED)]
