"""I3: one truthful result record per item the task refreshes, datasets and dataflows alike."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from pbi_taskflow.testing.invariants.model import (
    ALREADY_RUNNING,
    EXPECTED,
    FAILURES,
    HISTORY,
    OUTCOME_UNKNOWN,
    TOLERANCE,
    UNDECIDABLE,
    UPSTREAM_FAILED,
    WAIT_TIMEOUT,
    Context,
    Item,
    Run,
)

#: the upstream item an ``UPSTREAM_FAILED`` reason names: ``it reads dataflow 'Sales ETL' (Workspace)``
_NAMED_UPSTREAM = re.compile(r"it reads (?:dataset|dataflow) (?P<q>['\"])(?P<name>.+?)(?P=q) \(")
#: the refresh a ``completed in try N of this DAG run (refresh <id>)`` reason names
_REUSED = re.compile(r"completed in try \d+ of this DAG run \(refresh (?P<id>[^)\s]+)\)")


def check_results(ctx: Context, records: Mapping[str, list[dict[str, Any]]]) -> None:
    """I3 over every item of the task, and no record for an item it does not refresh."""
    for item in ctx.items:
        found = records.get(item.key, [])
        if len(found) != 1:
            ctx.flag("I3", item, f"{len(found)} result records instead of 1")
            continue
        _Record(ctx, item, found[0], records).check()
    selected = {item.key for item in ctx.items}
    for key in records:
        if key not in selected:
            ctx.flag("I3", None, f"a result record for item {key}, which was not selected")


def failed_upstream(record: Mapping[str, Any] | None) -> bool:
    """Whether an upstream item's record keeps the items reading it from refreshing (a failure or a ruled-out skip)."""
    if record is None:
        return False
    status = str(record.get("status"))
    return status in FAILURES or (status == "Skipped" and str(record.get("reason") or "").startswith(UPSTREAM_FAILED))


class _Record:
    """The checks of one item's result record."""

    def __init__(self, ctx: Context, item: Item, record: Mapping[str, Any],
                 records: Mapping[str, list[dict[str, Any]]]) -> None:
        self.ctx, self.obs, self.item, self.record, self.records = ctx, ctx.obs, item, record, records
        self.status = str(record.get("status"))
        self.refresh_id = str(record.get("refresh_id") or "").lower()
        self.run = next((r for r in item.runs if r.request_id.lower() == self.refresh_id), None) \
            if self.refresh_id else None
        self.ours = ctx.runs_ours(item)
        self.reason = str(record.get("reason") or "")
        # A refresh found in the history after a request's answer was lost may be another caller's that started at
        # the same moment (Power BI cannot tell them apart): reported, it must say so.
        self.undecidable = UNDECIDABLE in self.reason

    def flag(self, message: str) -> None:
        self.ctx.flag("I3", self.item, message)

    def check(self) -> None:
        item, status, run, record = self.item, self.status, self.run, self.record
        if (record.get("kind") == "dataflow") != (item.kind == "dataflow"):
            self.flag(f"reported with kind {record.get('kind')!r} for a {item.kind}")
        if status == "Skipped":
            self.skipped()
            return
        if status == "NotStarted":
            self.not_started()
            return
        if record.get("error_code") == OUTCOME_UNKNOWN and status == "Failed":
            self.outcome_unknown(run or (self.ours[-1] if self.ours else None))
            return
        if run is None:
            if self.ours:
                self.flag(f"reported {status} ({record.get('error_code')}) without the refresh it started "
                          f"({self.ours[-1].request_id}, {self.ours[-1].final_status()})")
            elif status not in FAILURES:
                self.flag(f"reported {status} for refresh {self.refresh_id or '-'} the emulator never started")
            return
        if not run.ours(self.obs.client_id):
            attach = self.obs.if_running == "attach"
            refused = self.refused()
            if not (attach or refused or self.undecidable):
                self.flag(f"reported someone else's refresh {run.request_id} ({run.refresh_type}) as its own "
                          f"({status}; if_running={self.obs.if_running!r})")
                return
            if refused:
                return
        elif run not in self.ours and self.obs.if_running != "attach":  # attach: a refresh still running is followed
            if self.refused():  # if_running='fail' refuses while an earlier clear's refresh runs
                return
            self.flag(f"reported refresh {run.request_id} started before the task was cleared, instead of "
                      "refreshing again")
            return
        if status == "TimedOut" and record.get("error_code") == WAIT_TIMEOUT:
            self.timed_out(run)
            return
        if run.is_running(self.ctx.now):
            self.flag(f"reported {status} for refresh {run.request_id}, which is still running")
        elif status not in EXPECTED[run.final_status()]:
            self.flag(f"reported {status} for refresh {run.request_id}, which ended {run.final_status()}")

    def not_started(self) -> None:
        run = self.run
        if run is not None and not run.ours(self.obs.client_id) and not self.undecidable:
            self.flag(f"reported someone else's refresh {run.request_id} ({run.refresh_type}) as the one it started "
                      "(NotStarted)")
        elif self.obs.wait or run is None or (run not in self.ours and not self.undecidable):
            self.flag(f"NotStarted for {self.refresh_id or 'no refresh'}: only wait=False reports that, for a "
                      "refresh the task started")

    def refused(self) -> bool:
        """Whether the record is ``if_running='fail'`` refusing to start while another refresh runs."""
        return self.obs.if_running == "fail" and self.status == "Failed" and \
            self.record.get("error_code") == ALREADY_RUNNING

    def outcome_unknown(self, run: Run | None) -> None:
        """Outcome unknown is the truth only while the history the task read did not list the refresh yet."""
        if run is None:
            return  # no refresh started: nothing to list
        reads = [r.time for r in self.ctx.requests if r.endpoint == HISTORY[self.item.kind] and self.item.about(r)
                 and r.status == 200]
        last = max(reads, default=None)
        if last is None:
            self.flag(f"reported the outcome of refresh {run.request_id} unknown without reading the history")
        elif run.in_history(last - TOLERANCE):
            self.flag(f"reported the outcome of refresh {run.request_id} unknown, but the history it read at "
                      f"{last:%H:%M:%S.%f} listed it ({run.final_status()})")

    def skipped(self) -> None:
        reason, ours, obs = self.reason, self.ours, self.obs
        # someone else's refreshes, or the task's own from before the last clear
        foreign = [r for r in self.item.runs if r not in ours]
        if ours and "completed in try" not in reason:
            self.flag(f"Skipped ({reason!r}) although the task started refresh {ours[-1].request_id} "
                      f"({ours[-1].final_status()})")
            return
        if "completed in try" in reason:
            # the refresh it names: one of the task's own, or another caller's an earlier try attached to
            named = _REUSED.search(reason)
            runs = [r for r in self.item.runs if self.ctx.since_epoch(r.start)
                    and r.request_id == named.group("id")] if named else ours
            ok = any(r.final_status() == "Completed" for r in runs)
        elif reason.startswith(UPSTREAM_FAILED):
            ok = self.upstream_failed()
        elif "another refresh is running" in reason:
            ok = obs.if_running == "skip" and bool(foreign)
        elif "wait=False" in reason:
            ok = not obs.wait and bool(foreign)
        elif "timed out" in reason:
            ok = obs.timeout is not None
        elif "min_interval" in reason:
            ok = obs.min_interval is not None
        else:
            ok = False
        if not ok:
            self.flag(f"Skipped without a documented reason that holds: {reason!r}")

    def upstream_failed(self) -> bool:
        """Whether the upstream item a ``not refreshed: it reads …`` reason names did fail (or was ruled out)."""
        if self.obs.upstream == "ignore":
            return False
        match = _NAMED_UPSTREAM.search(self.reason)
        if match is None:
            return False
        named = [r for rs in self.records.values() for r in rs if r.get("dataset_name") == match.group("name")]
        return any(failed_upstream(r) for r in named)

    def timed_out(self, run: Run) -> None:
        obs = self.obs
        if not run.ours(obs.client_id) and obs.if_running != "attach" and not self.undecidable:
            self.flag(f"TimedOut for someone else's refresh {run.request_id}")
            return
        if obs.timeout is None:
            self.flag(f"TimedOut for refresh {run.request_id} although the task has no timeout")
            return
        floor = self.ctx.deadline_floor()
        if floor is not None and run.planned_end + TOLERANCE < floor + dt.timedelta(seconds=obs.timeout) \
                and run.cancelled_at is None:
            self.flag(f"reported TimedOut for refresh {run.request_id}, which ended {run.final_status()} before "
                      f"the task's timeout of {obs.timeout:g} s")
        elif run.cancelled_at is not None and run.planned_end <= run.cancelled_at:
            self.flag(f"reported TimedOut for refresh {run.request_id}, which had ended")
