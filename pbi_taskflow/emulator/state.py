"""Emulated Power BI state: workspaces, datasets and the refresh state machine on the emulated clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from typing import TYPE_CHECKING, Any

from pbi_taskflow.emulator.clock import EmulatedClock

if TYPE_CHECKING:
    from pbi_taskflow.emulator.dataflows import DataflowState
    from pbi_taskflow.emulator.gateways import DatasourceState, GatewayState
    from pbi_taskflow.emulator.profiles import ProfileState

OUTCOMES = ("Completed", "Failed", "Cancelled", "TimedOut", "Disabled")
#: history ``status`` for each terminal extended status (TimedOut shows as Failed in history)
HISTORY_STATUS = {"Completed": "Completed", "Failed": "Failed", "Cancelled": "Cancelled", "TimedOut": "Failed",
                  "Disabled": "Disabled"}
#: refresh types that count against the shared-capacity daily quota (portal "Refresh now" does not)
QUOTA_TYPES = frozenset({"ViaApi", "ViaEnhancedApi", "Scheduled"})
SHARED_DAILY_LIMIT = 8
DEFAULT_ERRORS = {
    "Failed": ("ModelRefresh_ShortMessage_ProcessingError",
               "Data source error: the credentials provided for the source are invalid."),
    "TimedOut": ("RefreshTimedOut", "The refresh operation exceeded its timeout."),
}


def new_id() -> str:
    """A new lower-case GUID, the form Power BI uses for ids."""
    return str(uuid.uuid4())


def check_guid(value: str, what: str) -> str:
    """``value`` lower-cased if it is a GUID, else a ``ValueError`` naming ``what``."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        msg = f"{what} must be a GUID like Entra's and Power BI's (e.g. {new_id()}), got {value!r}."
        raise ValueError(msg) from None
    return value.lower()


def _check_outcome(outcome: str) -> str:
    for known in OUTCOMES:
        if outcome.lower() == known.lower():
            return known
    msg = f"Unknown refresh outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}."
    raise ValueError(msg)


def check_tables(tables: Any, dataset: str = "the dataset") -> dict[str, list[str]] | None:
    """Seeded tables as ``{table: [partition, ...]}`` (``None``: not seeded, so any table name is accepted).

    Accepts a list of table names (each with one partition named like the table, as Power BI names the
    single partition of an imported table) or a mapping of table name to a list of partition names (an
    empty list or ``None`` meaning that one default partition).
    """
    if tables is None:
        return None
    if isinstance(tables, str) or not isinstance(tables, (list, tuple, dict)):
        msg = (f"tables of {dataset} must be a list of table names or a mapping of table name to partition names, "
               f"got {tables!r}.")
        raise TypeError(msg)
    items = tables.items() if isinstance(tables, dict) else ((name, None) for name in tables)
    out: dict[str, list[str]] = {}
    for name, partitions in items:
        if not isinstance(name, str) or not name.strip():
            msg = f"A table name of {dataset} must be a non-empty string, got {name!r}."
            raise ValueError(msg)
        if partitions is None or partitions == []:
            partitions = [name]
        if isinstance(partitions, str) or not isinstance(partitions, (list, tuple)) or not all(
                isinstance(p, str) and p.strip() for p in partitions):
            msg = f"The partitions of table {name!r} of {dataset} must be a list of names, got {partitions!r}."
            raise ValueError(msg)
        if name in out:
            msg = f"Table {name!r} is listed twice for {dataset}."
            raise ValueError(msg)
        out[name] = list(partitions)
    return out


def _check_duration(duration: float, what: str = "duration") -> float:
    if duration < 0:
        msg = f"{what} must be >= 0 emulated seconds, got {duration!r}."
        raise ValueError(msg)
    return float(duration)


@dataclasses.dataclass
class RefreshRun:
    """One refresh of a dataset (a history entry), with its planned end and outcome."""

    request_id: str
    number: int
    refresh_type: str
    start: dt.datetime
    duration: float
    outcome: str
    error_code: str | None = None
    error_message: str | None = None
    enhanced: bool = False
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    cancelled_at: dt.datetime | None = None
    #: client id of the app whose refresh POST started it (``None``: a schedule, the portal, another caller)
    caller: str | None = None
    #: emulated seconds after ``start`` before the history lists it
    history_lag: float = 0.0
    #: emulated seconds after ``start`` during which its execution details answer 404
    details_lag: float = 0.0

    @property
    def end(self) -> dt.datetime:
        return self.cancelled_at or self.start + dt.timedelta(seconds=self.duration)

    @property
    def planned_end(self) -> dt.datetime:
        """When it ends (or ended) unless cancelled."""
        return self.start + dt.timedelta(seconds=self.duration)

    def in_history(self, now: dt.datetime) -> bool:
        """Whether the history lists it yet (see ``history_lag``)."""
        return (now - self.start).total_seconds() >= self.history_lag

    def has_details(self, now: dt.datetime) -> bool:
        """Whether its execution details exist yet (see ``details_lag``)."""
        return (now - self.start).total_seconds() >= self.details_lag

    def final_status(self) -> str:
        """Its terminal extended status (``Completed``, ``Failed``, ``Cancelled``, ``TimedOut``, ``Disabled``)."""
        return "Cancelled" if self.cancelled_at else self.outcome

    def is_running(self, now: dt.datetime) -> bool:
        return now < self.end

    def extended_status(self, now: dt.datetime) -> str:
        """``NotStarted`` briefly, then ``InProgress``, then the terminal outcome."""
        if not self.is_running(now):
            return "Cancelled" if self.cancelled_at else self.outcome
        if (now - self.start).total_seconds() < min(0.5, self.duration * 0.1):
            return "NotStarted"
        return "InProgress"

    def status(self, now: dt.datetime) -> str:
        """The history ``status``: ``Unknown`` while running."""
        if self.is_running(now):
            return "Unknown"
        return HISTORY_STATUS[self.extended_status(now)]

    def error(self, now: dt.datetime) -> tuple[str, str] | None:
        """(code, message) of a failed run, else ``None``."""
        ext = self.extended_status(now)
        if ext not in ("Failed", "TimedOut"):
            return None
        code, message = DEFAULT_ERRORS[ext]
        return self.error_code or code, self.error_message or message


@dataclasses.dataclass
class DatasetState:
    """An emulated dataset and its refresh knobs."""

    id: str
    name: str
    workspace_id: str
    refreshable: bool = True
    duration: float = 1.0
    outcome: str = "Completed"
    error_code: str | None = None
    error_message: str | None = None
    created: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    runs: list[RefreshRun] = dataclasses.field(default_factory=list)
    history_lag: float = 0.0
    details_lag: float = 0.0
    #: ``{table: [partition, ...]}`` when seeded; ``None``: unknown, so an enhanced refresh may name any table
    tables: dict[str, list[str]] | None = None
    #: ``(workspace id, dataflow id)`` of each dataflow it reads (see :mod:`pbi_taskflow.emulator.dataflows`)
    upstream_dataflows: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: its data sources and their gateway bindings (see :mod:`pbi_taskflow.emulator.gateways`)
    datasources: list[DatasourceState] = dataclasses.field(default_factory=list)

    @property
    def gateway_required(self) -> bool:
        """Whether a data source of it is on premises (``isOnPremGatewayRequired``)."""
        return any(source.on_premises for source in self.datasources)

    def history(self) -> list[RefreshRun]:
        """Runs, newest first."""
        return sorted(self.runs, key=lambda r: (r.start, r.number), reverse=True)

    def running(self, now: dt.datetime) -> RefreshRun | None:
        return next((r for r in self.runs if r.is_running(now)), None)

    def find_run(self, request_id: str) -> RefreshRun | None:
        return next((r for r in self.runs if r.request_id.lower() == request_id.lower()), None)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "workspace_id": self.workspace_id, "refreshable": self.refreshable,
                "duration": self.duration, "outcome": self.outcome, "history_lag": self.history_lag,
                "details_lag": self.details_lag,
                "tables": None if self.tables is None else {k: list(v) for k, v in self.tables.items()}}

    def unknown_object(self, objects: list[dict[str, str]]) -> str | None:
        """What the first refresh object naming a table or partition this dataset lacks refers to, else None."""
        if self.tables is None:
            return None
        known = {name.lower(): {p.lower() for p in parts} for name, parts in self.tables.items()}
        for item in objects:  # names compare without case, as Analysis Services' object names do
            table, partition = item["table"], item.get("partition")
            if table.lower() not in known:
                return f"table '{table}'"
            if partition is not None and partition.lower() not in known[table.lower()]:
                return f"partition '{partition}' of table '{table}'"
        return None


@dataclasses.dataclass
class WorkspaceState:
    """An emulated workspace (REST: group)."""

    id: str
    name: str
    dedicated: bool = True
    capacity_id: str | None = None
    members: frozenset[str] | None = None
    datasets: dict[str, DatasetState] = dataclasses.field(default_factory=dict)
    dataflows: dict[str, DataflowState] = dataclasses.field(default_factory=dict)
    #: the service principal profile it belongs to (``None``: the service principal itself)
    profile: str | None = None

    def admits(self, client_id: str | None, profile: str | None = None) -> bool:
        """Whether the app (acting as ``profile``, or as itself) may use this workspace (``members=None``: every
        app); a profile's workspaces are seen only with its header, the app's own only without one."""
        return (self.members is None or (client_id or "").lower() in self.members) and self.profile == profile

    def to_dict(self) -> dict[str, Any]:
        doc = {"id": self.id, "name": self.name, "dedicated": self.dedicated}
        return {**doc, "profile_id": self.profile} if self.profile else doc


def _lookup(items: list[Any], ref: str, kind: str) -> Any:
    for item in items:
        if item.id.lower() == ref.lower():
            return item
    exact = [i for i in items if i.name == ref]
    if len(exact) == 1:
        return exact[0]
    loose = [i for i in items if i.name.lower() == ref.lower()]
    if len(loose) == 1:
        return loose[0]
    if len(exact) > 1 or len(loose) > 1:
        msg = f"The emulator holds several {kind}s named {ref!r}; address it by id."
        raise ValueError(msg)
    names = ", ".join(repr(i.name) for i in items) or "none"
    msg = f"No emulated {kind} {ref!r}; known {kind}s: {names}. Add it first."
    raise ValueError(msg)


class PowerBIState:
    """All emulated workspaces and datasets, guarded by one lock (``state.lock``).

    :param clock: the emulated clock that drives refresh durations and timestamps.
    """

    def __init__(self, clock: EmulatedClock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.workspaces: dict[str, WorkspaceState] = {}
        self.profiles: dict[str, ProfileState] = {}
        self.gateways: dict[str, GatewayState] = {}
        self._numbers = 0

    def clear(self) -> None:
        with self.lock:
            self.workspaces.clear()
            self.profiles.clear()
            self.gateways.clear()

    # --- scenario ------------------------------------------------------------------------------

    def add_workspace(self, name: str, *, id: str | None = None, dedicated: bool = True,
                      members: list[str] | None = None, profile: str | None = None) -> WorkspaceState:
        with self.lock:
            ws = WorkspaceState(id=check_guid(id or new_id(), "workspace id"), name=name, dedicated=dedicated,
                                capacity_id=new_id() if dedicated else None,
                                members=None if members is None else frozenset(check_guid(m, "member client id")
                                                                               for m in members),
                                profile=self.profile_id(profile) if profile else None)
            if ws.id in self.workspaces:
                msg = f"A workspace with id {ws.id} already exists in the emulator."
                raise ValueError(msg)
            self.workspaces[ws.id] = ws
            return ws

    def profile_id(self, ref: str) -> str:
        """The id of a profile given by id or display name (``ValueError`` when unknown)."""
        with self.lock:
            return str(_lookup(list(self.profiles.values()), ref, "profile").id)

    def workspace(self, ref: str) -> WorkspaceState:
        """A workspace by id or name (``ValueError`` when unknown)."""
        with self.lock:
            return _lookup(list(self.workspaces.values()), ref, "workspace")  # type: ignore[no-any-return]

    def add_dataset(self, workspace: str, name: str, *, id: str | None = None, refreshable: bool = True,
                    duration: float = 1.0, outcome: str = "Completed", error_code: str | None = None,
                    error_message: str | None = None, history_lag: float = 0.0,
                    details_lag: float = 0.0, tables: Any = None) -> DatasetState:
        with self.lock:
            ws = self.workspace(workspace)
            ds = DatasetState(id=check_guid(id or new_id(), "dataset id"), name=name, workspace_id=ws.id,
                              refreshable=refreshable,
                              duration=_check_duration(duration), outcome=_check_outcome(outcome),
                              error_code=error_code, error_message=error_message,
                              history_lag=_check_duration(history_lag, "history_lag"),
                              details_lag=_check_duration(details_lag, "details_lag"),
                              tables=check_tables(tables, repr(name)))
            if any(ds.id in w.datasets for w in self.workspaces.values()):
                msg = f"A dataset with id {ds.id} already exists in the emulator."
                raise ValueError(msg)
            ws.datasets[ds.id] = ds
            return ds

    def dataset(self, ref: str) -> DatasetState:
        """A dataset by id or name, across workspaces (``ValueError`` when unknown or ambiguous)."""
        with self.lock:
            every = [d for w in self.workspaces.values() for d in w.datasets.values()]
            return _lookup(every, ref, "dataset")  # type: ignore[no-any-return]

    def set_refresh(self, dataset: str, *, duration: float | None = None, outcome: str | None = None,
                    error_code: str | None = None, error_message: str | None = None,
                    history_lag: float | None = None, details_lag: float | None = None) -> None:
        with self.lock:
            ds = self.dataset(dataset)
            if history_lag is not None:
                ds.history_lag = _check_duration(history_lag, "history_lag")
            if details_lag is not None:
                ds.details_lag = _check_duration(details_lag, "details_lag")
            if duration is not None:
                ds.duration = _check_duration(duration)
            if outcome is not None:
                ds.outcome = _check_outcome(outcome)
            if error_code is not None:
                ds.error_code = error_code
            if error_message is not None:
                ds.error_message = error_message

    def set_tables(self, dataset: str, tables: Any) -> None:
        """Seed (or with ``None`` forget) the tables and partitions of a dataset (see :func:`check_tables`)."""
        with self.lock:
            ds = self.dataset(dataset)
            ds.tables = check_tables(tables, repr(ds.name))

    def add_history(self, dataset: str, *, status: str = "Completed", start: dt.datetime | None = None,
                    end: dt.datetime | None = None, duration: float | None = None, refresh_type: str = "Scheduled",
                    ago: float | None = None, error_code: str | None = None,
                    error_message: str | None = None) -> RefreshRun:
        """Add a finished entry; ``ago`` is how long ago (emulated seconds) it ended."""
        with self.lock:
            ds = self.dataset(dataset)
            now = self.clock.now()
            span = dt.timedelta(seconds=_check_duration(duration if duration is not None else 60.0))
            if start is not None and end is not None:
                span = end - start
            elif start is not None:
                end = start + span
            elif end is None:
                end = now - dt.timedelta(seconds=ago if ago is not None else 3600.0)
            begin = start or end - span
            run = self._new_run(ds, refresh_type=refresh_type, start=begin, duration=span.total_seconds(),
                                outcome=_check_outcome(status), error_code=error_code, error_message=error_message,
                                enhanced=refresh_type == "ViaEnhancedApi")
            if run.is_running(now):
                ds.runs.remove(run)
                msg = ("add_history adds finished refreshes only; its end lies in the future. "
                       "Use start_external_refresh.")
                raise ValueError(msg)
            return run

    def _new_run(self, ds: DatasetState, **fields: Any) -> RefreshRun:
        self._numbers += 1
        run = RefreshRun(request_id=fields.pop("request_id", None) or new_id(), number=self._numbers, **fields)
        ds.runs.append(run)
        return run

    # --- refresh state machine -----------------------------------------------------------------

    def start_refresh(self, ds: DatasetState, *, refresh_type: str, enhanced: bool = False,
                      options: dict[str, Any] | None = None, duration: float | None = None,
                      timeout: float | None = None, request_id: str | None = None,
                      outcome: str | None = None, caller: str | None = None) -> RefreshRun:
        """Start a refresh now with the dataset's configured duration, outcome and lags (caller checks preconditions).

        ``caller`` is the client id of the app whose POST started it (``None`` for anyone else).
        """
        with self.lock:
            planned = ds.duration if duration is None else _check_duration(duration)
            outcome = ds.outcome if outcome is None else _check_outcome(outcome)
            if timeout is not None and timeout < planned:
                planned, outcome = timeout, "TimedOut"
            return self._new_run(ds, request_id=request_id, refresh_type=refresh_type, start=self.clock.now(),
                                 duration=planned, outcome=outcome, error_code=ds.error_code,
                                 error_message=ds.error_message, enhanced=enhanced, options=dict(options or {}),
                                 caller=caller, history_lag=ds.history_lag, details_lag=ds.details_lag)

    def quota_used(self, ds: DatasetState) -> int:
        """Refreshes counted against the shared-capacity quota in the last 24 emulated hours."""
        with self.lock:
            since = self.clock.now() - dt.timedelta(hours=24)
            return sum(1 for r in ds.runs if r.refresh_type in QUOTA_TYPES and r.start > since)

    def cancel(self, run: RefreshRun) -> None:
        with self.lock:
            now = self.clock.now()
            if run.is_running(now):
                run.cancelled_at = now
