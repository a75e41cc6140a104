"""What the invariant checks read: the task's observation, the emulator's items and refreshes seen alike, and the
shared context the checks of each concept run in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbi_taskflow.emulator import Emulator
    from pbi_taskflow.emulator.dataflows import DataflowState, Transaction
    from pbi_taskflow.emulator.requestlog import RequestRecord
    from pbi_taskflow.emulator.state import DatasetState
    from pbi_taskflow.emulator.state import RefreshRun as EmulatedRefresh

#: emulator outcome -> the statuses a task may report for it (history shows TimedOut as Failed)
EXPECTED = {"Completed": {"Completed"}, "Failed": {"Failed"}, "Cancelled": {"Cancelled"},
            "TimedOut": {"TimedOut", "Failed"}, "Disabled": {"Disabled"}}
FAILURES = {"Failed", "Cancelled", "TimedOut", "Disabled"}
#: a dataflow transaction's final status -> the refresh status it is reported as
TRANSACTION_STATUS = {"Success": "Completed", "Failed": "Failed", "Cancelled": "Cancelled"}
#: the error code of a result the task's own ``timeout`` ended
WAIT_TIMEOUT = "WaitTimeout"
#: the error code of a result whose refresh the history did not list (a lost answer, or not listed yet at the timeout)
OUTCOME_UNKNOWN = "RefreshOutcomeUnknown"
#: what the message of an outcome-unknown result the task's timeout ended says
AT_TIMEOUT = "the task's timeout"
#: the error code of ``if_running='fail'`` refusing to start
ALREADY_RUNNING = "RefreshAlreadyRunning"
#: What a result's reason says when the refresh followed may be another caller's (see pbi_taskflow.engine.probe).
UNDECIDABLE = "cannot tell whether this request or another caller started it"
#: How the reason of an item skipped because an item it reads failed begins.
UPSTREAM_FAILED = "not refreshed: it reads"
#: clock tolerance between the emulator's and the task's view of "when" (seconds)
TOLERANCE = dt.timedelta(milliseconds=50)
#: request log endpoint names, by item kind
POST = {"dataset": "refresh_post", "dataflow": "dataflow_refresh"}
HISTORY = {"dataset": "history", "dataflow": "dataflow_transactions"}
CANCEL = {"dataset": "cancel", "dataflow": "dataflow_cancel"}
#: calls that resolve names, and calls that read the lineage graph (made after the timeout starts counting)
RESOLVING = frozenset({"groups", "datasets", "dataset", "dataflows"})
LINEAGE_READS = frozenset({"dataset_upstream_dataflows", "dataflow_upstream_dataflows"})


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken promise: the invariant (``I1``..``I6``), the dataset or dataflow (if one) and what happened."""

    invariant: str
    dataset: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.dataset}]" if self.dataset else ""
        return f"{self.invariant}{where}: {self.message}"


@dataclasses.dataclass
class TaskObservation:
    """What one refresh task of one logical run did, as the checker needs it.

    :param datasets: the selected datasets (emulator names or ids).
    :param client_id: the app the task calls Power BI as (its requests and refreshes are told apart by it).
    :param state: the task instance's final state (``success``, ``failed``, ``skipped``...).
    :param results: the task's ``return_value`` XCom (result records), or None when it pushed none.
    :param texts: every log line, XCom value and alert text the task produced (checked for secrets).
    :param fail_policy: the task's ``fail_policy``.
    :param if_running: the task's ``if_running``.
    :param wait: the task's ``wait``.
    :param timeout: the task's ``timeout`` in seconds, or None.
    :param cancel_on_kill: the task's ``cancel_on_kill``.
    :param cancel_on_timeout: the task's ``cancel_on_timeout``.
    :param killed: whether a person killed the task (marked it failed); a shutdown (SIGTERM) is not a kill.
    :param epoch: when the task was last cleared (emulator time), or when the logical run began: refreshes
        started before belong to an earlier clear.
    :param min_interval: the task's ``min_interval`` in seconds, or None.
    :param dataflows: the selected dataflows (emulator names or ids).
    :param upstream: the task's ``upstream`` (``ignore``, ``order`` or ``refresh``).
    """

    datasets: Sequence[str]
    client_id: str
    state: str | None
    results: list[dict[str, Any]] | None
    texts: Sequence[str] = ()
    fail_policy: str = "any"
    if_running: str = "wait"
    wait: bool = True
    timeout: float | None = None
    cancel_on_kill: bool = True
    cancel_on_timeout: bool = True
    killed: bool = False
    epoch: dt.datetime | None = None
    min_interval: float | None = None
    dataflows: Sequence[str] = ()
    upstream: str = "ignore"


@dataclasses.dataclass(frozen=True)
class Run:
    """A dataset's refresh or a dataflow's transaction, as the checks compare them with what the task reported."""

    request_id: str
    refresh_type: str
    start: dt.datetime
    planned_end: dt.datetime
    cancelled_at: dt.datetime | None
    caller: str | None
    status: str
    history_lag: float = 0.0

    @classmethod
    def of_refresh(cls, run: EmulatedRefresh) -> Run:
        return cls(run.request_id, run.refresh_type, run.start, run.planned_end, run.cancelled_at, run.caller,
                   run.final_status(), run.history_lag)

    @classmethod
    def of_transaction(cls, transaction: Transaction) -> Run:
        planned = transaction.start + dt.timedelta(seconds=transaction.duration)
        status = "Cancelled" if transaction.cancelled_at else TRANSACTION_STATUS[transaction.outcome]
        return cls(transaction.id, transaction.refresh_type, transaction.start, planned, transaction.cancelled_at,
                   transaction.caller, status)

    @property
    def end(self) -> dt.datetime:
        return self.cancelled_at or self.planned_end

    def final_status(self) -> str:
        """``Completed``, ``Failed``, ``Cancelled``, ``TimedOut`` or ``Disabled`` (a transaction's ``Success`` is
        ``Completed``)."""
        return self.status

    def is_running(self, now: dt.datetime) -> bool:
        return now < self.end

    def in_history(self, now: dt.datetime) -> bool:
        """Whether the history (a dataflow's transactions list) lists it at ``now``."""
        return (now - self.start).total_seconds() >= self.history_lag

    def ours(self, client_id: str) -> bool:
        return (self.caller or "").lower() == client_id.lower()


@dataclasses.dataclass(frozen=True)
class Item:
    """A dataset or a dataflow of the emulator, with its refreshes (transactions) as :class:`Run` values."""

    id: str
    name: str
    kind: str
    workspace_id: str
    runs: tuple[Run, ...]

    @classmethod
    def of_dataset(cls, ds: DatasetState) -> Item:
        return cls(ds.id, ds.name, "dataset", ds.workspace_id, tuple(Run.of_refresh(r) for r in ds.runs))

    @classmethod
    def of_dataflow(cls, df: DataflowState) -> Item:
        return cls(df.id, df.name, "dataflow", df.workspace_id, tuple(Run.of_transaction(t) for t in df.transactions))

    @property
    def key(self) -> str:
        return self.id.lower()

    def about(self, request: RequestRecord) -> bool:
        """Whether a request's path names this item (its id)."""
        return f"/{self.kind}s/{self.key}" in request.path.lower()


def dataset_item(emulator: Emulator, ref: str) -> Item:
    return Item.of_dataset(emulator.state.dataset(ref))


def dataflow_item(emulator: Emulator, ref: str) -> Item:
    return Item.of_dataflow(emulator.dataflow(ref))


class Context:
    """One check's view: the emulator, the observation, the task's items and requests, and the violations found."""

    def __init__(self, emulator: Emulator, obs: TaskObservation, items: Sequence[Item]) -> None:
        self.emu = emulator
        self.obs = obs
        self.now = emulator.clock()
        self.out: list[Violation] = []
        self.items = list(items)
        self.requests = [r for r in emulator.requests if (r.client_id or "").lower() == obs.client_id.lower()]
        self.epoch = obs.epoch or dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def flag(self, invariant: str, item: Item | None, message: str) -> None:
        self.out.append(Violation(invariant, item.name if item is not None else None, message))

    def since_epoch(self, when: dt.datetime) -> bool:
        return when >= self.epoch - TOLERANCE

    def runs_ours(self, item: Item) -> list[Run]:
        """The refreshes the task started on ``item`` since the epoch, oldest first."""
        return sorted((r for r in item.runs if r.ours(self.obs.client_id) and self.since_epoch(r.start)),
                      key=lambda r: r.start)

    def posts(self, item: Item) -> list[RequestRecord]:
        """The refresh requests the task sent for ``item`` since the epoch (whatever their answer), oldest first."""
        return sorted((r for r in self.requests if r.endpoint == POST[item.kind] and r.method == "POST"
                       and self.since_epoch(r.time) and item.about(r)), key=lambda r: r.time)

    def deadline_floor(self) -> dt.datetime | None:
        """A time the task's ``timeout`` deadline is certainly later than (the timeout counted from it).

        The task starts counting after it resolved the items' names and before it reads the lineage graph or their
        history to plan: the last name-resolving call before the first of those reads is a safe lower bound.
        """
        calls = [r for r in self.requests if self.since_epoch(r.time)]
        reads = [r.time for r in calls if r.endpoint in set(HISTORY.values()) | LINEAGE_READS]
        first_read = min(reads) if reads else None
        resolving = [r.time for r in calls if r.endpoint in RESOLVING and (first_read is None or r.time <= first_read)]
        if resolving:
            return max(resolving)
        times = [r.time for r in calls]
        return min(times) if times else None


def records_by_item(results: Sequence[Mapping[str, Any]] | None) -> dict[str, list[dict[str, Any]]]:
    """The task's result records by lower-cased item id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in results or ():
        out.setdefault(str(record.get("dataset_id", "")).lower(), []).append(dict(record))
    return out
