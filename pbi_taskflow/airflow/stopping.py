"""Stopping a refresh task: a person's kill cancels what the task started, a worker shutdown cancels nothing.

Airflow sends SIGTERM to the task process (and calls ``on_kill``) in both cases: when a person marks
the task failed or success or clears it (the supervisor's heartbeat learns the new state and stops
the process), and when the worker itself shuts down (Celery warm shutdown, a pod eviction, a
deployment). They differ in Airflow's record of the task: a person's action has already changed the
task instance's state, a shutdown leaves it ``running``. The state is read back through the Task SDK;
when it cannot be read, nothing is cancelled (a healthy refresh is never cancelled on a guess).
"""

from __future__ import annotations

from typing import Any

#: Task instance states in which Airflow itself still runs (or will re-run) the task: a SIGTERM then comes
#: from a shutdown or the scheduler, not from a person.
STILL_RUNNING = frozenset({"running", "up_for_retry", "queued", "scheduled", "deferred", "up_for_reschedule"})


def stopped_by_person(ti: Any, count: int, logger: Any) -> bool:
    """Whether the task instance ``ti`` was stopped by a person (so the ``count`` refreshes it started are cancelled)."""
    from pbi_taskflow.airflow.compat import task_instance_state

    known, state = task_instance_state(ti)
    if not known:
        logger.warning(
            "The task is being stopped, and Airflow's record of it could not be read to tell a person's kill from a "
            "worker shutdown: its %d refresh(es) keep running (a retry follows them).", count,
        )
        return False
    if state in STILL_RUNNING:
        logger.warning(
            "The task is being stopped while Airflow still counts it as %s (a worker shutdown, pod eviction or "
            "deployment, not a person): its %d refresh(es) keep running and a retry follows them.", state, count,
        )
        return False
    logger.warning("Task stopped in Airflow (now %s): cancelling the %d Power BI refresh(es) it started.",
                   state or "cleared", count)
    return True


def cancel_started(client: Any, run: Any, logger: Any) -> int:
    """Cancel the enhanced refreshes and dataflow transactions ``run`` started (standard refreshes cannot be cancelled
    by API); return how many."""
    from pbi_taskflow.errors import PowerBIError

    cancelled = 0
    for handle in run.started_by_us():
        if not handle.cancellable:
            logger.warning(
                "Refresh %s of dataset %r is a standard refresh, which Power BI cannot cancel by API; it keeps running.",
                handle.refresh_id, handle.dataset_name,
            )
            continue
        try:
            client.cancel_refresh(handle)
            cancelled += 1
        except PowerBIError as exc:
            logger.warning("Could not cancel refresh %s of %s %r: %s", handle.refresh_id, handle.noun,
                           handle.dataset_name, exc)
    return cancelled


__all__ = ["STILL_RUNNING", "cancel_started", "stopped_by_person"]
