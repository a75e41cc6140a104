"""Wait for a task's refreshes in the worker: poll each on its own schedule until all are done.

Time is injected (``clock`` returns seconds, ``sleep`` waits), so the loop runs unchanged against
Power BI, against the emulator's accelerated clock in benchmarks, and in unit tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pbi_taskflow.errors import AuthenticationError, ConfigurationError, PowerBIError, ThrottledError
from pbi_taskflow.execution import RefreshRun
from pbi_taskflow.models import Handle, RefreshResult, RefreshState, RefreshStatus
from pbi_taskflow.policy import RefreshPolicy
from pbi_taskflow.poll import WatchPlan
from pbi_taskflow.retry import is_transient
from pbi_taskflow.status_log import log_state, log_throttle


def _noop() -> None:
    return None


class Waiter:
    """Drives a :class:`RefreshRun` with a synchronous client until it is done or its deadline passes.

    :param run: the task's refreshes.
    :param client: a :class:`~pbi_taskflow.client.PowerBIClient`.
    :param policy: the task's policy.
    :param logger: where status lines go.
    :param persist: called after every start and every finished refresh (records the run).
    :param clock: seconds, monotonic enough for scheduling (default ``time.time``).
    :param sleep: waits the given seconds (default ``time.sleep``).
    :param attempt: the task try, for status lines.
    """

    def __init__(
        self,
        run: RefreshRun,
        client: Any,
        policy: RefreshPolicy,
        logger: Any,
        *,
        persist: Callable[[], None] = _noop,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        attempt: int = 1,
    ) -> None:
        self.run = run
        self.client = client
        self.policy = policy
        self.logger = logger
        self.persist = persist
        self.clock = clock
        self.sleep = sleep
        self.attempt = attempt
        self.plan = run.watch_plan(policy)
        self.status_calls = 0

    def result_of(self, handle: Handle, state: RefreshState) -> RefreshResult:
        result: RefreshResult = self.client.result_from(handle, state)
        return result

    def start(self) -> None:
        """Start whatever pending refreshes fit in the free slots."""
        try:
            self.run.start_pending(self.client, self.policy, self.clock(), self.persist)
        finally:
            self.run.absorb(self.client)
        self._track()

    def _track(self) -> None:
        for key in [*self.run.active, *self.run.blockers]:
            if key not in self.plan.due:
                handle = self.run.watched_handle(key)
                schedule = self.policy.schedule(self.run.expected.get(handle.dataset_id))
                self.plan.add(key, schedule, self.run.started.get(key, self.clock()))

    def wait(self) -> bool:
        """Poll until every refresh is done; return False when the deadline passed first."""
        while True:
            self.start()
            if self.run.done:
                return True
            now = self.clock()
            deadline = self.run.deadline
            if deadline is not None and now >= deadline:
                return False
            due = self.plan.next_due()
            if due is None:  # pragma: no cover - start() tracks every watched refresh
                return self.run.done
            if due > now:
                self.sleep(min(due, deadline if deadline is not None else due) - now)
                continue
            for key in self.plan.due_now(now):
                self.poll(key, now)

    def poll(self, key: str, now: float) -> None:
        """One status call for one refresh."""
        handle = self.run.watched_handle(key)
        self.status_calls += 1
        outcome: RefreshState | PowerBIError
        try:
            outcome = self.client.get_refresh_state(handle)
        except PowerBIError as exc:
            outcome = exc
        self.run.absorb(self.client)
        if apply_observation(self.run, self.plan, key, now, outcome, self.logger, self.result_of, self.attempt):
            self.persist()


def apply_observation(
    run: RefreshRun,
    plan: WatchPlan,
    key: str,
    now: float,
    outcome: RefreshState | PowerBIError,
    logger: Any,
    result_of: Callable[[Handle, RefreshState], RefreshResult],
    attempt: int = 1,
) -> bool:
    """Record what one status call returned; True when the run changed in a way worth persisting.

    Throttling and transient errors only delay the next call (they never cancel or fail a refresh);
    authentication and configuration errors propagate; any other error ends the watch of that refresh.
    """
    handle = run.watched_handle(key)
    if isinstance(outcome, ThrottledError):
        wait = outcome.retry_after or 0.0
        log_throttle(logger, endpoint="status", retry_after=wait, dataset=handle.dataset_name)
        run.add_throttle(handle.dataset_id, 1, wait)
        plan.observed(key, now, terminal=False, retry_after=outcome.retry_after)
        return False
    if isinstance(outcome, (AuthenticationError, ConfigurationError)):
        raise outcome
    if isinstance(outcome, PowerBIError):
        if is_transient(outcome):
            logger.warning(
                "Status of refresh %s of dataset %r unavailable for now (%s); trying again later.",
                handle.refresh_id, handle.dataset_name, outcome,
            )
            plan.observed(key, now, terminal=False)
            return False
        logger.warning("Cannot follow refresh %s of dataset %r: %s", handle.refresh_id, handle.dataset_name, outcome)
        run.fail_watch(key, outcome)
        plan.observed(key, now, terminal=True)
        return True
    elapsed = plan.elapsed(key, now)
    if (
        outcome.status is RefreshStatus.NOT_STARTED
        and handle.kind == "standard"
        and not handle.attached
        and plan.schedules[key].appearance_expired(elapsed)
    ):
        # Never showed up in the history: Power BI dropped the request. Fail it; never re-send blindly.
        from pbi_taskflow.api import not_visible_error

        logger.warning("Refresh %s of dataset %r never appeared in the history.", handle.refresh_id, handle.dataset_name)
        run.fail_watch(key, not_visible_error(handle, elapsed))
        plan.observed(key, now, terminal=True)
        return True
    if run.seen.get(key) != outcome.status.value:
        run.seen[key] = outcome.status.value
        log_state(logger, handle, outcome, elapsed_s=elapsed, attempt=attempt,
                  throttled=run.throttled_s(handle.dataset_id))
    terminal = run.observe(key, outcome, result_of)
    plan.observed(key, now, terminal=terminal)
    return terminal


__all__ = ["Waiter", "apply_observation"]
