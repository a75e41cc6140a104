"""Lineage order of a task's refreshes: when an item may start, when it is ruled out, and how eagerly to poll.

With ``upstream="order"`` or ``"refresh"`` each item of a :class:`~pbi_taskflow.engine.run.RefreshRun` waits
for the items it reads (:attr:`after`, from the lineage graph of :mod:`pbi_taskflow.engine.lineage`). A pending
item starts once each of them has ended well (completed, or skipped by a policy); when one failed, was cancelled or
timed out, the item ends ``Skipped`` naming it without starting, and so, in turn, does everything that reads it.
A refresh that other items wait for is polled on a tighter ramp, so each level starts soon after the one before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pbi_taskflow.client.models import Handle, RefreshResult
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.engine.schedule import PollSchedule
from pbi_taskflow.engine.targets import skipped, target_from_dict

log = logging.getLogger("pbi_taskflow.engine.run")


class LineageOrder:
    """Lineage-order rules of :class:`~pbi_taskflow.engine.run.RefreshRun` (mixed into it; no fields of its own)."""

    pending: list[dict[str, Any]]
    active: dict[str, dict[str, Any]]
    blockers: dict[str, dict[str, Any]]
    probes: dict[str, dict[str, Any]]
    results: list[dict[str, Any]]
    expected: dict[str, float]
    after: dict[str, list[str]]
    ruled_out: list[str]

    if TYPE_CHECKING:
        def free_slots(self, policy: RefreshPolicy) -> int: ...  # RefreshRun's

    def _outcome(self, key: str) -> RefreshResult | None:
        """The result of item ``key`` (a lower-cased id), if it has ended."""
        for data in reversed(self.results):
            if str(data["dataset_id"]).lower() == key:
                return RefreshResult.from_dict(data)
        return None

    def _waiting_on(self, key: str) -> bool:
        """Whether item ``key`` is still to start, starting, or running in this run."""
        watched = [Handle.from_dict(h).dataset_id for h in self.active.values()]
        watched += [b["target"]["dataset_id"] for b in self.blockers.values()]
        watched += [p["target"]["dataset_id"] for p in self.probes.values()]
        watched += [t["dataset_id"] for t in self.pending]
        return any(str(i).lower() == key for i in watched)

    def readiness(self, data: Mapping[str, Any]) -> tuple[bool, RefreshResult | None]:
        """Whether a pending target may start now, and the failed upstream result that rules it out, if any."""
        ready = True
        for key in self.after.get(str(data["dataset_id"]).lower(), ()):
            result = self._outcome(key)
            if result is not None and (not result.succeeded or key in self.ruled_out):
                return False, result
            if result is None and self._waiting_on(key):
                ready = False
        return ready, None

    def startable(self, policy: RefreshPolicy) -> bool:
        """Whether a pending target can be started (or ruled out by its upstream) now: the task has work to do."""
        return bool(self.free_slots(policy)) and any(
            ready or blocked is not None for ready, blocked in map(self.readiness, self.pending))

    def _next_pending(self) -> dict[str, Any] | None:
        """The first pending target that may start; pending targets whose upstream failed end ``Skipped`` here."""
        for data in list(self.pending):
            ready, blocked = self.readiness(data)
            if blocked is not None:
                self.pending.remove(data)
                target = target_from_dict(data)
                how = ("was not refreshed because an item it reads failed"
                       if blocked.dataset_id.lower() in self.ruled_out else f"ended {blocked.status.value}")
                reason = (f"not refreshed: it reads {blocked.noun} {blocked.dataset_name!r} "
                          f"({blocked.workspace_name}), whose refresh {how}")
                log.warning("%s %r is not refreshed: upstream %s %r %s.", target.noun.capitalize(),
                            target.dataset_name, blocked.noun, blocked.dataset_name, how)
                self.ruled_out.append(target.dataset_id.lower())
                self.results.append(skipped(target, reason).to_dict())
                return self._next_pending()
            if ready:
                self.pending.remove(data)
                return data
        return None

    def schedule_for(self, policy: RefreshPolicy, dataset_id: str) -> PollSchedule:
        """The poll schedule of a refresh of ``dataset_id``: from its history, tighter when other items wait for it."""
        key = dataset_id.lower()
        gating = any(key in self.after.get(str(t["dataset_id"]).lower(), ()) for t in self.pending)
        return policy.schedule(self.expected.get(dataset_id), gating=gating)



__all__ = ["LineageOrder"]
