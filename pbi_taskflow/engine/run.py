"""One task's refreshes from plan to results, independent of Airflow.

:class:`RefreshRun` holds everything about the refreshes of one task as plain, JSON-ready values
(so it can be persisted between tries and carried by a trigger event): the datasets still to
start, the refreshes being watched, the ones another refresh blocks, and the finished results.
The worker drives it with a :class:`~pbi_taskflow.client.sync.PowerBIClient`; the deferrable trigger
reuses its planning helpers with the async client.

Policies applied here: ``max_concurrency``, the waiting deadline, and the rule that a transient error never
cancels a refresh nor starts a second one. Its other rules live in the modules it is mixed from: planning
(``if_running``, ``min_interval``, following an earlier try's refreshes) in :mod:`pbi_taskflow.engine.planner`,
what carries over between tries in :mod:`pbi_taskflow.engine.tries`, and lineage order in
:mod:`pbi_taskflow.engine.order`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pbi_taskflow.client.durations import format_seconds
from pbi_taskflow.client.models import (
    Handle,
    HistoryEntry,
    RefreshResult,
    RefreshState,
    RefreshStatus,
    Target,
)
from pbi_taskflow.engine.order import LineageOrder
from pbi_taskflow.engine.planner import PLAN_HISTORY_TOP, HistoryFacts, Planner, item_of
from pbi_taskflow.engine.policy import FAIL_POLICIES, IF_RUNNING, ON_EMPTY, RefreshPolicy
from pbi_taskflow.engine.probe import Probe, outcome_unknown, unlisted_at_timeout, utcnow_iso
from pbi_taskflow.engine.schedule import WatchPlan
from pbi_taskflow.engine.targets import (
    failed,
    skipped,
    target_from_dict,
    target_to_dict,
)
from pbi_taskflow.engine.tries import CarryOver
from pbi_taskflow.errors import (
    AmbiguousRefreshRequestError,
    AuthenticationError,
    ConfigurationError,
    PowerBIError,
    RefreshAlreadyRunningError,
)

log = logging.getLogger("pbi_taskflow.engine.run")


def _is_transient(exc: BaseException) -> bool:
    from pbi_taskflow.client.retry import is_transient

    return is_transient(exc)


# --- the run ---------------------------------------------------------------------------------------

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclasses.dataclass
class RefreshRun(Planner, CarryOver, LineageOrder):
    """The refreshes of one task. Every field is a plain value (see :meth:`to_dict`).

    :param pending: targets not started yet (dicts).
    :param active: refreshes being watched: ``{refresh_id: handle dict}``.
    :param blockers: refreshes by others that a pending target waits for (``if_running='wait'``):
        ``{refresh_id: {"handle": ..., "target": ...}}``.
    :param results: finished results (dicts), in completion order.
    :param expected: ``{dataset_id: expected duration in seconds}`` from history.
    :param started: ``{refresh_id: clock time}`` when each watched refresh started.
    :param deadline: clock time after which waiting stops, or None.
    :param seen: ``{refresh_id: last status logged}``.
    :param throttles: 429 answers waited out per dataset: ``{dataset_id: [count, seconds waited]}``.
    :param completed: refreshes that completed in earlier tries of the task in this DAG run:
        ``[{"try": n, "result": result dict}]`` (a retry skips those datasets).
    :param max_tries: the task instance's ``max_tries`` when :attr:`completed` was recorded. Airflow
        raises it whenever someone clears the task and never on an automatic retry, so a different value
        in a later try means the task was cleared and nothing completed before may be skipped.
    :param reused: the entries of :attr:`completed` this try skipped because it selected their datasets
        again: the try reports them, and emits their asset events when it succeeds.
    :param probes: refresh requests sent (or about to be sent) whose refresh id is not known:
        ``{probe key: Probe dict}`` (see :mod:`pbi_taskflow.engine.probe`). Recorded before each request.
    :param ours: refresh ids the task started in this DAG run, per dataset id (a retry recognises them).
    :param known: request ids each dataset's history held when the task planned, per dataset id.
    :param denied: consecutive 401/403 answers to status reads, per watched key.
    :param attempt: the task try driving the run now.
    :param profile_id: the service principal profile its refreshes were started as (``None``: the service principal
        itself). A retry follows them as that profile, and reuses completed refreshes only of the same profile.
    :param after: for a lineage-ordered refresh, the items (lower-cased ids) each item waits for:
        ``{item id: [upstream item id, ...]}``. A pending item starts only once each of them has ended well
        (completed, or skipped by a policy); when one fails, it ends ``Skipped`` without starting.
    :param depths: each item's depth in the lineage graph (0: reads nothing the task refreshes), reported in results.
    :param ruled_out: items (lower-cased ids) skipped because an upstream item failed: their own downstream items are
        skipped too.
    :param started_in: the try that started each refresh of :attr:`ours`.
    """

    pending: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    active: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    blockers: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    results: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    expected: dict[str, float] = dataclasses.field(default_factory=dict)
    started: dict[str, float] = dataclasses.field(default_factory=dict)
    deadline: float | None = None
    seen: dict[str, str] = dataclasses.field(default_factory=dict)
    throttles: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    completed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    max_tries: int | None = None
    reused: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    probes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    ours: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    known: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    denied: dict[str, int] = dataclasses.field(default_factory=dict)
    attempt: int = 1
    profile_id: str | None = None
    after: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    depths: dict[str, int] = dataclasses.field(default_factory=dict)
    ruled_out: list[str] = dataclasses.field(default_factory=list)
    started_in: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RefreshRun:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def done(self) -> bool:
        return not (self.pending or self.active or self.blockers or self.probes)

    def started_by_tries(self) -> dict[str, Any]:
        """What the next try needs to know of the refreshes this DAG run's tries started (:attr:`ours`)."""
        return {"ours": {k: list(v) for k, v in self.ours.items()}, "started_in": dict(self.started_in)}

    def handles(self) -> list[Handle]:
        return [Handle.from_dict(h) for h in self.active.values()]

    def started_by_us(self) -> list[Handle]:
        return [h for h in self.handles() if not h.attached]

    def final_results(self) -> list[RefreshResult]:
        """The results, each with the throttling its dataset went through (see :meth:`absorb`)."""
        out = []
        for data in self.results:
            result = RefreshResult.from_dict(data)
            count = int(self._throttle(result.dataset_id)[0])
            if count:
                result = dataclasses.replace(result, throttle_count=result.throttle_count + count)
            depth = self.depths.get(result.dataset_id.lower())
            if depth is not None:
                result = dataclasses.replace(result, depth=depth)
            out.append(result)
        return out

    # --- throttling ------------------------------------------------------------------------------

    def _throttle(self, dataset_id: str) -> list[float]:
        entry = self.throttles.get(dataset_id)
        return list(entry) if isinstance(entry, list) and len(entry) == 2 else [0, 0.0]

    def add_throttle(self, dataset_id: str, count: int = 1, seconds: float = 0.0) -> None:
        """Count ``count`` 429 answers about ``dataset_id`` that cost ``seconds`` of waiting."""
        entry = self._throttle(dataset_id)
        self.throttles[dataset_id] = [int(entry[0]) + count, float(entry[1]) + max(0.0, seconds)]

    def absorb(self, client: Any) -> None:
        """Move the throttling the client recorded per dataset into the run (it is reported in the results)."""
        take = getattr(client, "take_throttles", None)
        if take is None:
            return
        for (_workspace_id, dataset_id), (count, seconds) in take().items():
            self.add_throttle(dataset_id, int(count), seconds)

    def throttled_s(self, dataset_id: str) -> float | None:
        """Seconds waited because Power BI throttled calls about ``dataset_id``, or None when never throttled."""
        count, seconds = self._throttle(dataset_id)
        return float(seconds) if count else None

    def watched(self) -> list[str]:
        """Keys of everything watched: refreshes, refreshes that block a pending target, probes."""
        return [*self.active, *self.blockers, *self.probes]

    def watch_plan(self, policy: RefreshPolicy) -> WatchPlan:
        keys = self.watched()
        schedules = {key: self.schedule_for(policy, self.watched_handle(key).dataset_id) for key in keys}
        return WatchPlan(schedules=schedules, started={k: self.started[k] for k in keys})

    def expected_end(self) -> float | None:
        """The clock time by which history says every watched refresh ends, or None when history cannot say: an
        item without successful refreshes in its history, one waiting for a slot or for another caller's refresh."""
        keys = self.watched()
        if self.pending or self.blockers or not keys:
            return None
        ends = []
        for key in keys:
            expected = self.expected.get(self.watched_handle(key).dataset_id)
            if expected is None:
                return None
            ends.append(self.started[key] + expected)
        return max(ends)

    def restart_deadline(self, now: float, timeout: float | None) -> None:
        """Give a resumed try its own waiting deadline (not the interrupted try's)."""
        self.deadline = now + timeout if timeout else None

    # --- starting -----------------------------------------------------------------------------

    def free_slots(self, policy: RefreshPolicy) -> int:
        return max(0, policy.max_concurrency - len(self.active) - len(self.probes))

    def remember(self, handle: Handle, now: float) -> None:
        """Watch a refresh this task started."""
        self.active[handle.refresh_id] = handle.to_dict()
        self.started[handle.refresh_id] = now
        ids = self.ours.setdefault(handle.dataset_id, [])
        if handle.refresh_id not in ids:
            ids.append(handle.refresh_id)
            self.started_in[handle.refresh_id] = self.attempt

    def start_pending(
        self,
        client: Any,
        policy: RefreshPolicy,
        now: float,
        on_started: Callable[[], None],
        attempt: int = 1,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        """Start pending targets while slots are free; ``on_started`` persists after each request.

        The request is recorded as a probe before it is sent (``before_send``, default ``on_started``), so a
        try that dies before recording the answer leaves the retry something to look for in the history
        instead of sending it again. When ``before_send`` raises, the request is not sent and stays pending.
        """
        while self.pending and self.free_slots(policy):
            data = self._next_pending()
            if data is None:
                break  # the rest wait for their upstream items
            target = target_from_dict(data)
            probe = Probe(target, utcnow_iso(), attempt, tuple(self.known.get(target.dataset_id, ())))
            self.probes[probe.key] = probe.to_dict()
            self.started[probe.key] = now
            try:
                (before_send or on_started)()
            except Exception:
                self.drop_probe(probe.key)
                self.pending.insert(0, data)
                raise
            try:
                if target.is_dataflow:
                    # Power BI answers without an id: the transaction is found in the dataflow's list (see probe.py)
                    requested = client.start_dataflow(target).isoformat()
                    self.probes[probe.key] = dataclasses.replace(probe, requested_at=requested, accepted=True).to_dict()
                    on_started()
                    continue
                handle = client.trigger_refresh(target)
            except AmbiguousRefreshRequestError as exc:
                log.warning("The refresh request for %s %r got no usable answer (%s); looking for the refresh "
                            "in the history instead of sending the request again.", target.noun, target.dataset_name,
                            exc)
                self.probes[probe.key] = dataclasses.replace(
                    probe, requested_at=exc.requested_at or probe.requested_at).to_dict()
            except RefreshAlreadyRunningError as exc:
                self.drop_probe(probe.key)
                self._race(client, target, exc, policy, now)
            except (AuthenticationError, ConfigurationError):
                self.drop_probe(probe.key)
                self.pending.insert(0, target_to_dict(target))
                raise
            except PowerBIError as exc:
                self.drop_probe(probe.key)
                log.warning("Could not start the refresh of %s %r: %s", target.noun, target.dataset_name, exc)
                self.results.append(failed(target, exc).to_dict())
            else:
                self.drop_probe(probe.key)
                self.remember(handle, now)
            on_started()

    def drop_probe(self, key: str) -> Probe:
        self.started.pop(key, None)
        return Probe.from_dict(self.probes.pop(key))

    def _race(self, client: Any, target: Target, exc: PowerBIError, policy: RefreshPolicy, now: float) -> None:
        """Power BI said "already running" although planning saw nothing: apply ``if_running`` now."""
        entry = None
        if policy.if_running in ("wait", "attach"):
            try:
                entry = client.running_refresh(target.workspace_id, target.dataset_id, **item_of(target))
            except PowerBIError as err:
                if not _is_transient(err):
                    raise
        if entry is None and policy.if_running in ("wait", "attach"):
            self.results.append(failed(target, exc).to_dict())
            return
        if entry is None:
            entry = HistoryEntry(request_id="unknown", refresh_type=None, status=RefreshStatus.UNKNOWN)
        self.on_running(target, entry, policy, now)

    # --- watching -----------------------------------------------------------------------------

    def observe(self, key: str, state: RefreshState, result_of: Callable[[Handle, RefreshState], RefreshResult]) -> bool:
        """Record an observation of a watched refresh; return True when it is terminal."""
        if key in self.blockers:
            if state.status.is_terminal:
                blocked = self.blockers.pop(key)
                self.pending.append(blocked["target"])
                return True
            return False
        if not state.status.is_terminal:
            return False
        handle = Handle.from_dict(self.active.pop(key))
        self.results.append(result_of(handle, state).to_dict())
        return True

    def watched_handle(self, key: str) -> Handle:
        if key in self.probes:
            return Probe.from_dict(self.probes[key]).placeholder()
        data = self.active.get(key) or self.blockers[key]["handle"]
        return Handle.from_dict(data)

    def fail_watch(self, key: str, exc: PowerBIError) -> None:
        """A watched refresh cannot be followed any more (e.g. it never appeared in the history)."""
        if key in self.blockers:
            self.pending.append(self.blockers.pop(key)["target"])
            return
        handle = Handle.from_dict(self.active.pop(key))
        self.results.append(failed(handle, exc).to_dict())

    def unlisted(self, handle: Handle) -> bool:
        """Whether ``handle`` is a standard refresh the task started that the history never listed."""
        return handle.kind == "standard" and not handle.attached and \
            self.seen.get(handle.refresh_id) in (None, RefreshStatus.NOT_STARTED.value)

    def time_out(self, result_of: Callable[[Handle, RefreshState], RefreshResult], waited: float) -> list[Handle]:
        """Stop waiting: unfinished refreshes end ``TimedOut``; return the handles that were running."""
        running = self.handles()
        for handle in running:
            if self.unlisted(handle):
                # Power BI accepted the request but its history does not list the refresh yet: neither running nor
                # ended can be said truthfully
                self.results.append(failed(handle, unlisted_at_timeout(handle, waited)).to_dict())
                continue
            state = RefreshState(
                status=RefreshStatus.TIMED_OUT,
                error_code="WaitTimeout",
                error_message=f"still running after the task's timeout of {format_seconds(waited)} s",
            )
            self.results.append(result_of(handle, state).to_dict())
        for blocked in self.blockers.values():
            target = target_from_dict(blocked["target"])
            self.results.append(skipped(target, "timed out waiting for another refresh to end").to_dict())
        for data in self.pending:
            self.results.append(skipped(target_from_dict(data), "timed out before it could start").to_dict())
        for key in list(self.probes):
            probe = self.drop_probe(key)
            self.results.append(failed(probe.target, outcome_unknown(probe, waited, timed_out=True)).to_dict())
        self.active.clear()
        self.blockers.clear()
        self.pending.clear()
        return running


__all__ = [
    "PLAN_HISTORY_TOP",
    "FAIL_POLICIES",
    "IF_RUNNING",
    "ON_EMPTY",
    "HistoryFacts",
    "item_of",
    "RefreshPolicy",
    "RefreshRun",
]
