"""When and how a deferrable refresh task hands its wait to the triggerer.

Deferring has a fixed cost: the trigger reports no sooner than ``[pbi_taskflow] trigger_settle`` seconds after
the deferral (Airflow's race on fast triggers, docs/deploy.md), then the task resumes in a worker, which loads
the DAG again. For refreshes that history says end within ``[pbi_taskflow] worker_wait_under`` seconds, that
costs more than it saves: the task waits for them in the worker, for that long at most, and defers only if
they still run then. Without history (a dataset's first refreshes) the task defers at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pbi_taskflow.airflow.config import number_option

if TYPE_CHECKING:
    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger
    from pbi_taskflow.engine.policy import RefreshPolicy
    from pbi_taskflow.engine.run import RefreshRun

#: Seconds after a deferral before the trigger may fire (``[pbi_taskflow] trigger_settle``): Airflow fails a
#: try whose trigger fires before the scheduler has handled the deferring worker's exit (docs/deploy.md).
TRIGGER_SETTLE = 10.0
#: Refreshes history says end within this many seconds are waited for in the worker before deferring
#: (``[pbi_taskflow] worker_wait_under``; 0 always defers at once).
WORKER_WAIT_UNDER = 20.0


@dataclasses.dataclass(frozen=True)
class Deferral:
    """How a deferrable task defers, from ``[pbi_taskflow]`` (read before any refresh starts, so a bad value
    fails the task with nothing started).

    :param settle: ``trigger_settle``, seconds.
    :param worker_wait_under: ``worker_wait_under``, seconds.
    """

    settle: float = TRIGGER_SETTLE
    worker_wait_under: float = WORKER_WAIT_UNDER

    @classmethod
    def from_config(cls) -> Deferral:
        """Read both options; :class:`~pbi_taskflow.errors.ConfigurationError` names one that is not a number."""
        return cls(settle=number_option("trigger_settle", str(TRIGGER_SETTLE)),
                   worker_wait_under=number_option("worker_wait_under", str(WORKER_WAIT_UNDER)))

    def worker_wait_until(self, run: RefreshRun, now: float, log: Any) -> float | None:
        """The clock time until which the task waits in the worker, or None to defer at once.

        :param run: the task's refreshes, started.
        :param now: the run's clock now.
        """
        window = self.worker_wait_under
        end = run.expected_end()
        if window <= 0 or end is None or end - now > window:
            return None
        log.info(
            "History says the refreshes end within %.0f s: waiting for them in the worker, deferring only if they "
            "still run in %.0f s ([pbi_taskflow] worker_wait_under).", max(0.0, end - now), window,
        )
        return now + window

    def trigger(self, conn_id: str, run: RefreshRun, policy: RefreshPolicy) -> PowerBIRefreshTrigger:
        """The trigger that takes over the wait, reporting no sooner than ``settle`` seconds from now."""
        from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger

        return PowerBIRefreshTrigger(
            conn_id=conn_id, run=run.to_dict(), policy=policy.to_dict(),
            not_before=time.time() + self.settle if self.settle > 0 else None,
        )


def defer_timeout(run: RefreshRun, clock: Callable[[], float]) -> dt.timedelta | None:
    """Airflow's timeout of the deferral: an hour past the run's own deadline, which the trigger reports itself."""
    if run.deadline is None:
        return None
    return dt.timedelta(seconds=max(0.0, run.deadline - clock()) + 3600)


__all__ = ["TRIGGER_SETTLE", "WORKER_WAIT_UNDER", "Deferral", "defer_timeout"]
