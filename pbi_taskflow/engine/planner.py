"""Planning a task's refreshes: one history read per item, sorted into pending, followed, attached, blocked or skipped.

:class:`Planner` is mixed into :class:`~pbi_taskflow.engine.run.RefreshRun`. Each item's history (a dataflow's:
its transactions) is read once: a refresh an earlier try of the DAG run started is followed while it runs and reused
once it completed; ``min_interval`` skips an item refreshed successfully not long ago; ``if_running`` decides about
a refresh someone else runs; everything else waits to be started. The history's successful refreshes also give the
expected duration that tunes the poll schedule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pbi_taskflow.client.models import Handle, HistoryEntry, RefreshResult, RefreshStatus, Target, parse_timestamp
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.engine.schedule import expected_duration
from pbi_taskflow.engine.targets import attached_handle, failed, skipped, target_to_dict
from pbi_taskflow.errors import RefreshAlreadyRunningError

log = logging.getLogger("pbi_taskflow.engine.run")

#: History entries read per dataset when planning (running refresh, last success, expected duration).
PLAN_HISTORY_TOP = 20


def item_of(target: Target) -> dict[str, str]:
    """The ``item`` keyword of the clients' history reads for a dataflow target (none for a dataset's)."""
    return {"item": "dataflow"} if target.is_dataflow else {}



@dataclasses.dataclass(frozen=True)
class HistoryFacts:
    """What one history read tells the planner about a dataset."""

    running: HistoryEntry | None
    last_success_end: dt.datetime | None
    expected: float | None

    @classmethod
    def from_entries(cls, entries: Iterable[HistoryEntry]) -> HistoryFacts:
        entries = list(entries)
        running = next((e for e in entries if not e.status.is_terminal and not e.end), None)
        successes = [e for e in entries if e.status is RefreshStatus.COMPLETED]
        ends = [parse_timestamp(e.end) for e in successes]
        last = max((e for e in ends if e is not None), default=None)
        return cls(running=running, last_success_end=last, expected=expected_duration(e.duration_s for e in successes))



class Planner:
    """Planning rules of :class:`~pbi_taskflow.engine.run.RefreshRun` (mixed into it; no fields of its own)."""

    pending: list[dict[str, Any]]
    active: dict[str, dict[str, Any]]
    blockers: dict[str, dict[str, Any]]
    results: list[dict[str, Any]]
    expected: dict[str, float]
    started: dict[str, float]
    ours: dict[str, list[str]]
    known: dict[str, list[str]]
    started_in: dict[str, int]
    attempt: int
    after: dict[str, list[str]]

    if TYPE_CHECKING:
        def reuse(self, result: RefreshResult, attempt: int) -> None: ...  # engine/tries.py, through RefreshRun

    def plan(self, client: Any, targets: Iterable[Target], policy: RefreshPolicy, now: float) -> None:
        """Read each dataset's history once and sort it into pending, attached, blocked or skipped.

        A refresh an earlier try of this DAG run started (:attr:`ours`) is followed while it runs, and reused when it
        completed (that try did not see it end: ``wait=False``, or it failed first); never started again.
        """
        wall = dt.datetime.now(dt.timezone.utc)
        for target in targets:
            entries = client.refresh_history(
                target.workspace_id, target.dataset_id, top=PLAN_HISTORY_TOP,
                _names=(target.workspace_name, target.dataset_name), **item_of(target),
            )
            self.known[target.dataset_id] = [e.request_id for e in entries if e.request_id]
            facts = HistoryFacts.from_entries(entries)
            if facts.expected is not None:
                self.expected[target.dataset_id] = facts.expected
            ended = self._ours_completed(target, entries)
            if ended is not None and facts.running is None:
                from pbi_taskflow.client.api import state_from_entry

                log.info("%s %r was refreshed by refresh %s, which an earlier try of this task started in this DAG "
                         "run; not refreshing it again.", target.noun.capitalize(), target.dataset_name,
                         ended.request_id)
                handle = self._our_handle(target, ended)
                self.reuse(client.result_from(handle, state_from_entry(ended)),
                           self.started_in.get(ended.request_id, self.attempt))
                continue
            if policy.min_interval and facts.last_success_end is not None and facts.running is None:
                age = (wall - facts.last_success_end).total_seconds()
                if age < policy.min_interval:
                    reason = (
                        f"refreshed successfully {age:.0f} s ago ({facts.last_success_end.isoformat()}), "
                        f"less than min_interval={policy.min_interval:.0f} s"
                    )
                    self.results.append(skipped(target, reason).to_dict())
                    continue
            if facts.running is not None and facts.running.request_id in self.ours.get(target.dataset_id, ()):
                # started by an earlier try of this task and DAG run: follow it, never start a second one
                self.active[facts.running.request_id] = self._our_handle(target, facts.running).to_dict()
                self.started[facts.running.request_id] = now
                log.info("%s %r is refreshing with refresh %s, which this task started in an earlier try; "
                         "following it.", target.noun.capitalize(), target.dataset_name, facts.running.request_id)
            elif facts.running is not None:
                self.on_running(target, facts.running, policy, now)
            else:
                self.pending.append(target_to_dict(target))

    def _ours_completed(self, target: Target, entries: list[HistoryEntry]) -> HistoryEntry | None:
        """The newest refresh of ``target`` that an earlier try started, if it completed and nothing newer did."""
        ours = {i.lower() for i in self.ours.get(target.dataset_id, ())}
        for entry in entries:  # newest first
            if entry.request_id.lower() in ours:
                return entry if entry.status is RefreshStatus.COMPLETED else None
            if entry.status is RefreshStatus.COMPLETED:
                return None
        return None

    def on_running(self, target: Target, entry: HistoryEntry, policy: RefreshPolicy, now: float) -> None:
        """Apply ``if_running`` to a dataset another refresh (``entry``) is running on."""
        other = f"refresh {entry.request_id} ({entry.refresh_type or 'unknown type'})"
        if policy.if_running == "skip":
            self.results.append(skipped(target, f"another refresh is running: {other}").to_dict())
        elif policy.if_running == "fail":
            exc = RefreshAlreadyRunningError(
                f"{target.noun.capitalize()} {target.dataset_name!r} in workspace {target.workspace_name!r} is already "
                "refreshing "
                f"({other}) and the task has if_running='fail'.",
                code="RefreshAlreadyRunning",
            )
            self.results.append(failed(target, exc, refresh_id=entry.request_id).to_dict())
        else:
            handle = attached_handle(target, entry)
            started = parse_timestamp(entry.start)
            offset = (dt.datetime.now(dt.timezone.utc) - started).total_seconds() if started else 0.0
            self.started[handle.refresh_id] = now - max(0.0, offset)
            if policy.if_running == "attach" and self.after.get(target.dataset_id.lower()):
                # lineage order: a refresh running before the items it reads were refreshed cannot stand for one
                # started after them (nor complete while they fail); wait for it, then refresh in order
                self.blockers[handle.refresh_id] = {"handle": handle.to_dict(), "target": target_to_dict(target)}
                log.info("%s %r is already refreshing (%s), which started before the items it reads were refreshed; "
                         "waiting for it to end, then refreshing it after them (upstream order) instead of attaching.",
                         target.noun.capitalize(), target.dataset_name, other)
            elif policy.if_running == "attach":
                self.active[handle.refresh_id] = handle.to_dict()
                log.info("%s %r is already refreshing (%s); attaching to it.", target.noun.capitalize(),
                         target.dataset_name, other)
            else:
                self.blockers[handle.refresh_id] = {"handle": handle.to_dict(), "target": target_to_dict(target)}
                log.info("%s %r is already refreshing (%s); waiting for it to end first.", target.noun.capitalize(),
                         target.dataset_name, other)

    @staticmethod
    def _our_handle(target: Target, entry: HistoryEntry) -> Handle:
        handle = attached_handle(target, entry)
        kind = "dataflow" if target.is_dataflow else "enhanced" if target.options.is_enhanced else "standard"
        return dataclasses.replace(handle, kind=kind, attached=False)


__all__ = ["PLAN_HISTORY_TOP", "HistoryFacts", "Planner", "item_of"]
