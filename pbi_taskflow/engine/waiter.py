"""Wait for a task's refreshes in the worker: poll each on its own schedule until all are done.

Time is injected (``clock`` returns seconds, ``sleep`` waits), so the loop runs unchanged against
Power BI, against the emulator's accelerated clock in benchmarks, and in unit tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pbi_taskflow.client.models import Handle, RefreshResult, RefreshState, RefreshStatus
from pbi_taskflow.client.retry import is_transient
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.engine.probe import Finding, Probe, find, is_probe, not_someone_elses, outcome_unknown
from pbi_taskflow.engine.run import PLAN_HISTORY_TOP, RefreshRun, item_of
from pbi_taskflow.engine.schedule import WatchPlan
from pbi_taskflow.engine.targets import failed, target_to_dict
from pbi_taskflow.errors import (
    AuthenticationError,
    ConfigurationError,
    PermissionDeniedError,
    PowerBIError,
    StatusReadDeniedError,
    ThrottledError,
)
from pbi_taskflow.observability.status_log import log_state, log_throttle

#: Consecutive 401/403 answers to status reads of one refresh before the try gives up on it (the refresh
#: stays recorded, so the retry of the task follows it again).
DENIED_LIMIT = 5


def _noop() -> None:
    return None


class Waiter:
    """Drives a :class:`RefreshRun` with a synchronous client until it is done or its deadline passes.

    :param run: the task's refreshes.
    :param client: a :class:`~pbi_taskflow.client.sync.PowerBIClient`.
    :param policy: the task's policy.
    :param logger: where status lines go.
    :param persist: called after every start and every finished refresh (records the run).
    :param persist_before_send: records the run before each refresh request and raises when it cannot (the
        request is then not sent); default ``persist``.
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
        persist_before_send: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        attempt: int = 1,
    ) -> None:
        self.run = run
        self.client = client
        self.policy = policy
        self.logger = logger
        self.persist = persist
        self.persist_before_send = persist_before_send or persist
        self.clock = clock
        self.sleep = sleep
        self.attempt = attempt
        run.attempt = attempt
        self.plan = run.watch_plan(policy)
        self.status_calls = 0

    def result_of(self, handle: Handle, state: RefreshState) -> RefreshResult:
        result: RefreshResult = self.client.result_from(handle, state)
        return result

    def start(self) -> None:
        """Start whatever pending refreshes fit in the free slots."""
        try:
            self.run.start_pending(
                self.client, self.policy, self.clock(), self.persist, self.attempt, self.persist_before_send
            )
        finally:
            self.run.absorb(self.client)
        self._track()

    def _track(self) -> None:
        track(self.run, self.plan, self.policy, self.clock())

    def wait(self, *, until_started: bool = False, until: float | None = None) -> bool:
        """Poll until every refresh is done; return False when the deadline (or ``until``) passed first.

        :param until_started: return as soon as every selected dataset's refresh has started (``wait=False``
            with more datasets than ``max_concurrency``: the rest start as slots free up; one that waits for another
            caller's refresh, ``if_running='wait'``, starts once that has ended).
        :param until: clock time at which to stop waiting even though refreshes still run (a deferrable task's
            wait in the worker before it defers).
        """
        while True:
            self.start()
            if self.run.done or (until_started and not (self.run.pending or self.run.probes or self.run.blockers)):
                return True
            now = self.clock()
            deadline = self.run.deadline
            stop = min((t for t in (deadline, until) if t is not None), default=None)
            if stop is not None and now >= stop:
                return False
            due = self.plan.next_due()
            if due is None:  # pragma: no cover - start() tracks every watched refresh
                return self.run.done
            if due > now:
                self.sleep(min(due, stop if stop is not None else due) - now)
                continue
            for key in self.plan.due_now(now):
                self.poll(key, now)

    def poll(self, key: str, now: float) -> None:
        """One status call for one refresh (a history read for a probe)."""
        self.status_calls += 1
        if is_probe(key):
            self._probe(key, now)
            return
        handle = self.run.watched_handle(key)
        outcome: RefreshState | PowerBIError
        try:
            outcome = self.client.get_refresh_state(handle)
        except PowerBIError as exc:
            outcome = exc
        self.run.absorb(self.client)
        if apply_observation(self.run, self.plan, key, now, outcome, self.logger, self.result_of, self.attempt):
            self.persist()

    def _probe(self, key: str, now: float) -> None:
        probe = Probe.from_dict(self.run.probes[key])
        outcome: Finding | PowerBIError
        uncertain = False
        try:
            target = probe.target
            entries = self.client.refresh_history(target.workspace_id, target.dataset_id, top=PLAN_HISTORY_TOP,
                                                  _names=(target.workspace_name, target.dataset_name), **item_of(target))
            outcome = find(probe, entries)
            if outcome.ours is not None and probe.enhanced:
                match = self.client.confirm_options(probe.handle(outcome.ours.request_id), target)
                uncertain = match is None
                outcome = not_someone_elses(outcome, match)
        except PowerBIError as exc:
            outcome = exc
        self.run.absorb(self.client)
        if apply_probe(self.run, self.plan, key, now, outcome, self.logger, self.policy, self.attempt,
                       uncertain=uncertain):
            self.persist()

    def final_check(self) -> None:
        """Read every watched refresh's status once more (the deadline passed): only still-running ones time out."""
        now = self.clock()
        for key in list(self.run.probes):  # a request without answer: is its refresh in the history now?
            if key in self.run.probes:
                try:
                    self.poll(key, now)
                except PowerBIError as exc:
                    self.logger.warning("Could not read the refresh history at the deadline: %s", exc)
        for key in list(self.run.active):
            if key in self.run.active:
                try:
                    self.poll(key, now)
                except PowerBIError as exc:
                    self.logger.warning("Could not read the status of refresh %s at the deadline: %s", key, exc)


def track(run: RefreshRun, plan: WatchPlan, policy: RefreshPolicy, now: float) -> None:
    """Schedule status calls for everything the run watches that the plan does not know yet."""
    for key in run.watched():
        if key not in plan.due:
            handle = run.watched_handle(key)
            plan.add(key, run.schedule_for(policy, handle.dataset_id), run.started.get(key, now))


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
    if isinstance(outcome, PermissionDeniedError):
        return _denied(run, plan, key, now, outcome, logger)
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
    run.denied.pop(key, None)
    elapsed = plan.elapsed(key, now)
    if (
        outcome.status is RefreshStatus.NOT_STARTED
        and handle.kind == "standard"
        and not handle.attached
        and plan.schedules[key].appearance_expired(elapsed)
    ):
        # Never showed up in the history: Power BI dropped the request. Fail it; never re-send blindly.
        from pbi_taskflow.client.api import not_visible_error

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


def _denied(run: RefreshRun, plan: Any, key: str, now: float, exc: PermissionDeniedError, logger: Any) -> bool:
    """A 401/403 on a status read (after the client renewed the token once) says nothing about the refresh.

    Keep watching; after :data:`DENIED_LIMIT` in a row fail the try without a result for that refresh, so it
    stays recorded and the retry of the task follows it again instead of starting another one.
    """
    handle = run.watched_handle(key)
    count = run.denied.get(key, 0) + 1
    run.denied[key] = count
    if count >= DENIED_LIMIT:
        raise StatusReadDeniedError(
            f"Power BI refused {count} status reads in a row of refresh {handle.refresh_id} of dataset "
            f"{handle.dataset_name!r} in workspace {handle.workspace_name!r} ({exc}). The refresh itself may still "
            "be running: it stays recorded, and a retry of the task follows it instead of starting another. Check "
            "the service principal's access to the workspace (Member or Admin) if this persists.",
            status=exc.status, code=exc.code, request_id=exc.request_id, workspace=handle.workspace_name,
            dataset=handle.dataset_name,
        )
    logger.warning(
        "Power BI refused the status read of refresh %s of dataset %r (%s); the refresh is not affected, trying "
        "again later (%d of %d).", handle.refresh_id, handle.dataset_name, exc.status, count, DENIED_LIMIT,
    )
    plan.observed(key, now, terminal=False)
    return False


def apply_probe(
    run: RefreshRun,
    plan: Any,
    key: str,
    now: float,
    outcome: Finding | PowerBIError,
    logger: Any,
    policy: RefreshPolicy,
    attempt: int = 1,
    *,
    uncertain: bool = False,
) -> bool:
    """Record what one history read says about a probe (see :mod:`pbi_taskflow.engine.probe`); True when it settled.

    :param uncertain: the request's refresh was found but its options could not be compared: it is
        followed as attached (never cancelled).
    """
    probe = Probe.from_dict(run.probes[key])
    target = probe.target
    if isinstance(outcome, ThrottledError):
        run.add_throttle(target.dataset_id, 1, outcome.retry_after or 0.0)
        plan.observed(key, now, terminal=False, retry_after=outcome.retry_after)
        return False
    if isinstance(outcome, (AuthenticationError, ConfigurationError)):
        raise outcome
    if isinstance(outcome, PowerBIError):
        if is_transient(outcome) or isinstance(outcome, PermissionDeniedError):
            logger.warning("The refresh history of dataset %r is unavailable for now (%s); looking again later.",
                           target.dataset_name, outcome)
            plan.observed(key, now, terminal=False)
            return False
        run.drop_probe(key)
        plan.observed(key, now, terminal=True)
        run.results.append(failed(target, outcome).to_dict())
        return True
    started = run.started.get(key, now)
    if outcome.ours is not None and probe.accepted:
        run.drop_probe(key)
        plan.observed(key, now, terminal=True)
        handle = probe.handle(outcome.ours.request_id)
        run.remember(handle, started)
        plan.add(handle.refresh_id, run.schedule_for(policy, target.dataset_id), started)
        logger.info("Started refresh %s of %s %r in workspace %r.", handle.refresh_id, target.noun,
                    target.dataset_name, target.workspace_name)
        return True
    if outcome.ours is not None:
        run.drop_probe(key)
        plan.observed(key, now, terminal=True)
        # Nothing in Power BI's answers ties a refresh to the request that started it: another caller's API refresh
        # of the same kind (with the same options) that started at the same moment looks the same. So the refresh
        # is followed and reported as attached: never cancelled, its record saying why.
        how = "its options could not be read" if uncertain else ("its options match" if probe.enhanced else "")
        note = (f"found in the history after the refresh request's answer was lost ({probe.requested_at})"
                + (f"; {how}" if how else "")
                + "; Power BI cannot tell whether this request or another caller started it, so it is never cancelled")
        handle = probe.handle(outcome.ours.request_id, attached=True, note=note)
        run.remember(handle, started)
        plan.add(handle.refresh_id, run.schedule_for(policy, target.dataset_id), started)
        logger.warning(
            "The refresh request for %s %r got no usable answer, but Power BI started refresh %s; following it%s "
            "instead of sending the request again.", target.noun, target.dataset_name, handle.refresh_id,
            " as attached (nothing ties it to this request for sure, so it is never cancelled)",
        )
        return True
    if outcome.other is not None:
        run.drop_probe(key)
        plan.observed(key, now, terminal=True)
        logger.warning(
            "The refresh request for %s %r was not followed by a refresh of ours, and refresh %s (%s) that someone "
            "else started is running, so Power BI did not start ours; applying if_running=%r.", target.noun,
            target.dataset_name,
            outcome.other.request_id, outcome.other.refresh_type or "unknown type", policy.if_running,
        )
        run.on_running(target, outcome.other, policy, now)
        return True
    elapsed = plan.elapsed(key, now)
    if not plan.schedules[key].appearance_expired(elapsed):
        plan.observed(key, now, terminal=False)
        return False
    run.drop_probe(key)
    plan.observed(key, now, terminal=True)
    if probe.attempt >= attempt:
        logger.warning("No refresh of %s %r appeared in the history within %.0f s of its request.",
                       target.noun, target.dataset_name, elapsed)
        run.results.append(failed(target, outcome_unknown(probe, elapsed)).to_dict())
    else:
        logger.info("No refresh of %s %r appeared in the history since an earlier try's request (%s): that "
                    "request started nothing; sending it again.", target.noun, target.dataset_name, probe.requested_at)
        run.pending.append(target_to_dict(target))
    return True


__all__ = ["DENIED_LIMIT", "Waiter", "apply_observation", "apply_probe", "track"]
