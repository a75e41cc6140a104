"""What one try of a refresh task leaves to the next: resume an interrupted try, skip what completed, or start afresh.

A try that fails keeps the refreshes it completed in :attr:`RefreshRun.completed`, so an automatic
retry refreshes only the other datasets; a try interrupted mid-way leaves its whole run for the retry
to resume. A clear (Airflow raises ``max_tries``) discards both: every dataset is refreshed again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from pbi_taskflow.client.models import RefreshResult, RefreshStatus, Target
from pbi_taskflow.engine.targets import target_key, target_to_dict


class CarryOver:
    """Carry-over rules of :class:`~pbi_taskflow.engine.run.RefreshRun` (mixed into it; no fields of its own)."""

    pending: list[dict[str, Any]]
    active: dict[str, dict[str, Any]]
    blockers: dict[str, dict[str, Any]]
    probes: dict[str, dict[str, Any]]
    results: list[dict[str, Any]]
    completed: list[dict[str, Any]]
    reused: list[dict[str, Any]]
    max_tries: int | None

    def final_results(self) -> list[RefreshResult]:  # pragma: no cover - provided by RefreshRun
        raise NotImplementedError

    @property
    def resumable(self) -> bool:
        """Whether this record is an interrupted try's (refreshes or results to pick up), not only earlier successes."""
        return bool(self.pending or self.active or self.blockers or self.probes or self.results)

    def cleared_since(self, max_tries: int | None) -> bool:
        """Whether the task was cleared after this record was written (Airflow raised ``max_tries``)."""
        return self.max_tries is not None and max_tries is not None and max_tries != self.max_tries

    def reusable(self, max_tries: int | None) -> list[dict[str, Any]]:
        """The :attr:`completed` refreshes a new try may skip: none if the task was cleared since they were recorded."""
        return [] if self.cleared_since(max_tries) else list(self.completed)

    def carried_over(self, attempt: int) -> list[dict[str, Any]]:
        """:attr:`completed` plus this try's completed results: what the next try of the task may skip.

        Only refreshes that completed count: an item skipped (by a policy, or because an item it reads failed) was
        not refreshed, so the next try decides about it again.
        """
        known = {target_key(c["result"]) for c in self.completed}
        fresh = [
            {"try": attempt, "result": r.to_dict()}
            for r in self.final_results()
            if r.status is RefreshStatus.COMPLETED and target_key(r.to_dict()) not in known
        ]
        return [*self.completed, *fresh]

    def skip_completed(self, targets: Iterable[Target]) -> list[Target]:
        """Report targets completed in an earlier try as Skipped (keeping that result); return the others."""
        done = {target_key(c["result"]): c for c in self.completed}
        todo = []
        for target in targets:
            earlier = done.get(target_key(target_to_dict(target)))
            if earlier is None:
                todo.append(target)
                continue
            self.reuse(RefreshResult.from_dict(earlier["result"]), int(earlier["try"]))
        return todo

    def reuse(self, result: RefreshResult, attempt: int) -> None:
        """Report a refresh an earlier try (``attempt``) of this DAG run completed as Skipped, naming it; the try
        emits its asset event when it succeeds (see :meth:`reused_results`)."""
        reason = f"completed in try {attempt} of this DAG run"
        if result.refresh_id:
            reason += f" (refresh {result.refresh_id})"
        skipped_result = dataclasses.replace(result, status=RefreshStatus.SKIPPED, reason=reason, throttle_count=0)
        self.results.append(skipped_result.to_dict())
        self.reused.append({"try": attempt, "result": result.to_dict()})

    def reused_results(self) -> list[tuple[int, RefreshResult]]:
        """``(try, result)`` of each earlier completed refresh this try skipped (see :attr:`reused`)."""
        return [(int(c["try"]), RefreshResult.from_dict(c["result"])) for c in self.reused]


__all__ = ["CarryOver"]
