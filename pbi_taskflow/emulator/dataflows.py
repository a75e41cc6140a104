"""Emulated Power BI dataflows: refresh transactions on the emulated clock, and lineage links.

A dataflow lives in a workspace (``WorkspaceState.dataflows``) and may read other dataflows, in its own
workspace or another (``upstream``); a dataset may read dataflows (``DatasetState.upstream_dataflows``).
Both are lists of ``(workspace id, dataflow id)``. Each refresh is a :class:`Transaction` that runs for the
dataflow's configured duration and ends ``Success``, ``Failed`` or ``Cancelled`` as configured.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pbi_taskflow.emulator.state import DatasetState, PowerBIState, WorkspaceState, check_guid, new_id
from pbi_taskflow.emulator.state import _check_duration as check_seconds
from pbi_taskflow.emulator.state import _lookup as lookup

if TYPE_CHECKING:
    from pbi_taskflow.emulator.powerbi import PowerBI
    from pbi_taskflow.emulator.wire import Request, Response

#: how a finished dataflow transaction ends (its ``status``); a running one reports ``InProgress``
DATAFLOW_OUTCOMES = ("Success", "Failed", "Cancelled")
RUNNING = "InProgress"
#: ``refreshType`` of a transaction started through the REST API (the value Microsoft's example shows)
API_REFRESH_TYPE = "OnDemand"
#: accepted ``notifyOption`` values of a dataflow refresh (Power BI does not support MailOnCompletion for dataflows)
NOTIFY_OPTIONS = ("NoNotification", "MailOnFailure")

_DATAFLOW = "/dataflows/(?P<f>[^/]+)"
#: endpoint name: (method, path below ``/v1.0/myorg/groups/{g}``); ``datasets/upstreamDataflows`` comes first, so it
#: is not taken for a dataset id
_PATHS = {
    "dataset_upstream_dataflows": ("GET", "/datasets/upstreamDataflows"),
    "dataflows": ("GET", "/dataflows"),
    "dataflow_cancel": ("POST", "/dataflows/transactions/(?P<t>[^/]+)/cancel"),
    "dataflow": ("GET", _DATAFLOW),
    "dataflow_refresh": ("POST", f"{_DATAFLOW}/refreshes"),
    "dataflow_transactions": ("GET", f"{_DATAFLOW}/transactions"),
    "dataflow_upstream_dataflows": ("GET", f"{_DATAFLOW}/upstreamDataflows"),
}
#: the dataflow routes, matched before the dataset routes
DATAFLOW_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    (method, endpoint, re.compile(rf"^/v1\.0/myorg/groups/(?P<g>[^/]+){suffix}/?$", re.IGNORECASE))
    for endpoint, (method, suffix) in _PATHS.items()
]
#: the request log's and fault injection's names of the dataflow endpoints
DATAFLOW_ENDPOINTS = frozenset(_PATHS)

_NUMBERS = itertools.count(1)  # the ``$n`` that ends a transaction id


def dataflow_handlers(powerbi: PowerBI) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
    """The handlers of :data:`DATAFLOW_ROUTES`, by endpoint name, for the Power BI part of the emulator."""
    from pbi_taskflow.emulator.dataflow_api import DataflowAPI  # it imports the module of ``powerbi``

    return DataflowAPI(powerbi).handlers()


def check_outcome(outcome: str) -> str:
    """A dataflow outcome in Power BI's spelling (``ValueError`` for anything else)."""
    for known in DATAFLOW_OUTCOMES:
        if isinstance(outcome, str) and outcome.lower() == known.lower():
            return known
    msg = f"Unknown dataflow refresh outcome {outcome!r}; expected one of {', '.join(DATAFLOW_OUTCOMES)}."
    raise ValueError(msg)


@dataclasses.dataclass
class Transaction:
    """One refresh of a dataflow, as ``GET …/transactions`` lists it."""

    id: str
    refresh_type: str
    start: dt.datetime
    duration: float
    outcome: str
    cancelled_at: dt.datetime | None = None
    #: client id of the app whose POST started it (``None``: a schedule, the portal, another caller)
    caller: str | None = None
    notify_option: str | None = None

    @property
    def end(self) -> dt.datetime:
        return self.cancelled_at or self.start + dt.timedelta(seconds=self.duration)

    def is_running(self, now: dt.datetime) -> bool:
        return now < self.end

    def status(self, now: dt.datetime) -> str:
        """``InProgress`` while it runs, then ``Success``, ``Failed`` or ``Cancelled``."""
        if self.is_running(now):
            return RUNNING
        return "Cancelled" if self.cancelled_at else self.outcome


@dataclasses.dataclass
class DataflowState:
    """An emulated dataflow, its refresh knobs, transactions and the dataflows it reads."""

    id: str
    name: str
    workspace_id: str
    description: str = ""
    configured_by: str = "owner@contoso.com"
    duration: float = 1.0
    outcome: str = "Success"
    created: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    transactions: list[Transaction] = dataclasses.field(default_factory=list)
    #: ``(workspace id, dataflow id)`` of each dataflow it reads
    upstream: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def history(self) -> list[Transaction]:
        """Transactions, newest first."""
        return sorted(self.transactions, key=lambda t: t.start, reverse=True)

    def running(self, now: dt.datetime) -> Transaction | None:
        return next((t for t in self.transactions if t.is_running(now)), None)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "workspace_id": self.workspace_id, "duration": self.duration,
                "outcome": self.outcome, "upstream": [{"workspace_id": w, "id": f} for w, f in self.upstream]}


class Dataflows:
    """The dataflows of a :class:`~pbi_taskflow.emulator.state.PowerBIState`, under its lock."""

    def __init__(self, state: PowerBIState) -> None:
        self.state = state

    def all(self) -> list[DataflowState]:
        return [df for ws in self.state.workspaces.values() for df in ws.dataflows.values()]

    def get(self, ref: str, workspace: str | None = None) -> DataflowState:
        """A dataflow by id or name, in ``workspace`` or across workspaces (``ValueError`` when unknown)."""
        with self.state.lock:
            items = list(self.state.workspace(workspace).dataflows.values()) if workspace else self.all()
            return lookup(items, ref, "dataflow")  # type: ignore[no-any-return]

    def add(self, workspace: str, name: str, *, id: str | None = None, description: str = "",
            configured_by: str = "owner@contoso.com", duration: float = 1.0, outcome: str = "Success",
            upstream: Iterable[str] = ()) -> DataflowState:
        with self.state.lock:
            ws = self.state.workspace(workspace)
            df = DataflowState(id=check_guid(id or new_id(), "dataflow id"), name=name, workspace_id=ws.id,
                               description=description, configured_by=configured_by,
                               duration=check_seconds(duration), outcome=check_outcome(outcome))
            if any(df.id == other.id for other in self.all()):
                msg = f"A dataflow with id {df.id} already exists in the emulator."
                raise ValueError(msg)
            links = self.refs(upstream)  # before adding it: a dataflow cannot read itself
            ws.dataflows[df.id] = df
            df.upstream = links
            return df

    def refs(self, dataflows: Iterable[str]) -> list[tuple[str, str]]:
        """``(workspace id, dataflow id)`` of dataflows given by id or name (names must be unique across workspaces)."""
        if isinstance(dataflows, str):
            dataflows = [dataflows]
        found = [self.get(ref) for ref in dataflows]
        return list(dict.fromkeys((df.workspace_id, df.id) for df in found))

    def link_dataflow(self, dataflow: str, upstream: Iterable[str], workspace: str | None = None) -> None:
        """Make ``dataflow`` read ``upstream`` too (ids or names)."""
        with self.state.lock:
            df = self.get(dataflow, workspace)
            links = self.refs(upstream)
            if (df.workspace_id, df.id) in links:
                msg = f"Dataflow {df.name!r} cannot read itself."
                raise ValueError(msg)
            df.upstream = list(dict.fromkeys([*df.upstream, *links]))

    def link_dataset(self, dataset: str, upstream: Iterable[str], workspace: str | None = None) -> DatasetState:
        """Make ``dataset`` read the ``upstream`` dataflows (ids or names, possibly in other workspaces)."""
        with self.state.lock:
            ds = (lookup(list(self.state.workspace(workspace).datasets.values()), dataset, "dataset") if workspace
                  else self.state.dataset(dataset))
            ds.upstream_dataflows = list(dict.fromkeys([*ds.upstream_dataflows, *self.refs(upstream)]))
            return ds  # type: ignore[no-any-return]

    def configure(self, dataflow: str, *, duration: float | None = None, outcome: str | None = None) -> None:
        with self.state.lock:
            df = self.get(dataflow)
            if duration is not None:
                df.duration = check_seconds(duration)
            if outcome is not None:
                df.outcome = check_outcome(outcome)

    def start(self, df: DataflowState, *, refresh_type: str = API_REFRESH_TYPE, duration: float | None = None,
              outcome: str | None = None, caller: str | None = None, notify_option: str | None = None,
              start: dt.datetime | None = None) -> Transaction:
        """A new transaction of ``df`` from now (or ``start``), with its configured duration and outcome."""
        with self.state.lock:
            begin = start or self.state.clock.now()
            stamp = begin.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
            transaction = Transaction(
                id=f"{stamp}0Z@{new_id()}${next(_NUMBERS)}", refresh_type=refresh_type, start=begin,
                duration=df.duration if duration is None else check_seconds(duration),
                outcome=df.outcome if outcome is None else check_outcome(outcome), caller=caller,
                notify_option=notify_option)
            df.transactions.append(transaction)
            return transaction

    def add_history(self, dataflow: str, *, status: str = "Success", ago: float = 3600.0, duration: float = 60.0,
                    refresh_type: str = "Scheduled") -> Transaction:
        """A finished transaction that ended ``ago`` emulated seconds ago."""
        with self.state.lock:
            df = self.get(dataflow)
            end = self.state.clock.now() - dt.timedelta(seconds=check_seconds(ago, "ago"))
            span = check_seconds(duration)
            return self.start(df, refresh_type=refresh_type, duration=span, outcome=status,
                              start=end - dt.timedelta(seconds=span))

    def find_transaction(self, ws: WorkspaceState, transaction_id: str) -> Transaction | None:
        """The transaction with this id of a dataflow of ``ws``."""
        for df in ws.dataflows.values():
            for transaction in df.transactions:
                if transaction.id.lower() == transaction_id.lower():
                    return transaction
        return None


class DataflowSeeding:
    """The :class:`~pbi_taskflow.emulator.Emulator` methods that seed dataflows, their links and transactions."""

    state: PowerBIState

    @property
    def _dataflows(self) -> Dataflows:
        return Dataflows(self.state)

    def dataflow(self, dataflow: str, workspace: str | None = None) -> DataflowState:
        """An emulated dataflow by id or name (its ``transactions`` are what Power BI saw happen)."""
        return self._dataflows.get(dataflow, workspace)

    def add_dataflow(self, workspace: str, name: str, *, id: str | None = None, description: str = "",
                     duration: float = 1.0, outcome: str = "Success", upstream: Iterable[str] = ()) -> dict[str, Any]:
        """Add a dataflow to a workspace (by name or id); each refresh runs ``duration`` emulated seconds and ends
        ``outcome`` (``Success``, ``Failed`` or ``Cancelled``).

        ``upstream``: the dataflows it reads (ids, or names unique across workspaces), which must exist already;
        :meth:`link_dataflow` adds links later.
        """
        return self._dataflows.add(workspace, name, id=id, description=description, duration=duration,
                                   outcome=outcome, upstream=upstream).to_dict()

    def link_dataflow(self, workspace: str | None, dataflow: str, upstream: Iterable[str]) -> None:
        """Make a dataflow (of ``workspace``, or of any workspace when ``None``) read the ``upstream`` dataflows."""
        self._dataflows.link_dataflow(dataflow, upstream, workspace)

    def link_dataset(self, workspace: str | None, dataset: str, upstream_dataflows: Iterable[str]) -> None:
        """Make a dataset (of ``workspace``, or of any workspace when ``None``) read the ``upstream_dataflows``
        (ids, or names unique across workspaces), as ``GET …/datasets/upstreamDataflows`` then lists."""
        self._dataflows.link_dataset(dataset, upstream_dataflows, workspace)

    def set_dataflow_refresh(self, dataflow: str, *, duration: float | None = None, outcome: str | None = None) -> None:
        """Change how the next refreshes of a dataflow (by id or name) run and end."""
        self._dataflows.configure(dataflow, duration=duration, outcome=outcome)

    def add_dataflow_history(self, dataflow: str, *, status: str = "Success", ago: float = 3600.0,
                             duration: float = 60.0, refresh_type: str = "Scheduled") -> dict[str, Any]:
        """Add a finished transaction that ended ``ago`` emulated seconds ago; returns its id."""
        transaction = self._dataflows.add_history(dataflow, status=status, ago=ago, duration=duration,
                                                  refresh_type=refresh_type)
        return {"id": transaction.id, "start": transaction.start, "end": transaction.end}

    def start_external_dataflow_refresh(self, dataflow: str, *, duration: float | None = None,
                                        refresh_type: str = "Scheduled", outcome: str | None = None) -> dict[str, Any]:
        """Start a refresh of a dataflow nobody in the test asked for (a schedule, the portal); returns its id."""
        with self.state.lock:
            df = self._dataflows.get(dataflow)
            if df.running(self.state.clock.now()) is not None:
                msg = f"Dataflow {df.name!r} already has a refresh running; wait for it before starting another."
                raise ValueError(msg)
            transaction = self._dataflows.start(df, refresh_type=refresh_type, duration=duration, outcome=outcome)
            return {"id": transaction.id, "start": transaction.start, "end": transaction.end}


_DATAFLOW_KEYS = {"name", "id", "description", "duration", "outcome", "upstream", "transactions"}
_TRANSACTION_KEYS = {"status", "ago", "duration", "refresh_type"}


def apply_dataflows(emu: DataflowSeeding, workspaces: Iterable[Any]) -> None:
    """Seed the ``dataflows`` of scenario workspaces, then their ``upstream`` links and the datasets'
    ``upstream_dataflows`` (so a link may name a dataflow seeded later in the file)."""
    from pbi_taskflow.emulator.scenario import _check as check_keys

    workspaces = list(workspaces)
    links: list[tuple[str, Any]] = []
    for w_index, ws in enumerate(workspaces):
        ref = ws.get("id") or ws["name"]
        for d_index, raw in enumerate(ws.get("dataflows") or ()):
            where = f"workspaces[{w_index}].dataflows[{d_index}]"
            df = dict(check_keys(raw, _DATAFLOW_KEYS, where, ("name",)))
            upstream, history = df.pop("upstream", None), df.pop("transactions", None) or ()
            created = emu.add_dataflow(ref, df.pop("name"), **df)
            links.extend([(created["id"], upstream)] if upstream else [])
            for h_index, entry in enumerate(history):
                emu.add_dataflow_history(created["id"], **check_keys(entry, _TRANSACTION_KEYS,
                                                                     f"{where}.transactions[{h_index}]"))
    for dataflow, upstream in links:
        emu.link_dataflow(None, dataflow, upstream)
    for ws in workspaces:
        for ds in ws.get("datasets") or ():
            if ds.get("upstream_dataflows"):
                emu.link_dataset(ws.get("id") or ws["name"], ds.get("id") or ds["name"], ds["upstream_dataflows"])
