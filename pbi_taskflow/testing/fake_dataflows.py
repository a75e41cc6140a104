"""The dataflow and lineage part of :class:`~pbi_taskflow.testing.fake_client.FakePowerBIClient`.

Dataflows are refreshed like the real client does it: ``start_dataflow(target)`` returns the request time (Power BI
returns no id), and the refresh is a transaction (an ``OnDemand`` :class:`HistoryEntry`) that
``refresh_history(..., item="dataflow")`` lists newest first. A transaction is ``InProgress`` for the programmed
number of ``get_refresh_state`` calls, then ends with the dataflow's outcome (``Completed``, ``Failed`` or
``Cancelled``). Lineage is seeded with ``add_dataflow(upstream=...)``, :meth:`~FakeDataflows.link_dataflow`,
:meth:`~FakeDataflows.link_dataset` and :meth:`~FakeDataflows.link_model`, and read through the calls of
:class:`~pbi_taskflow.engine.lineage.LineageClient`. The fake has no allow-list: ``allowed_workspace`` resolves any
workspace it holds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pbi_taskflow.client.models import (
    DATAFLOW_NOTIFY_OPTIONS,
    Dataflow,
    DataflowInfo,
    Datasource,
    Handle,
    HistoryEntry,
    RefreshState,
    RefreshStatus,
    Target,
    UpstreamDataflow,
    Workspace,
)
from pbi_taskflow.errors import ConfigurationError, NotFoundError, RefreshAlreadyRunningError

if TYPE_CHECKING:
    from pbi_taskflow.testing.fake_client import FakeDataset

__all__ = ["DATAFLOW_METHODS", "FakeDataflow", "FakeDataflows"]

#: the faked client calls of dataflows and lineage (each a ``MagicMock`` on the fake client)
DATAFLOW_METHODS = (
    "list_dataflows",
    "get_dataflow",
    "start_dataflow",
    "allowed_workspace",
    "dataset_upstream_dataflows",
    "dataflow_upstream_dataflows",
    "list_datasources",
)
#: how a transaction the API started is listed
ON_DEMAND = "OnDemand"
#: the server of a composite model's data source reading a semantic model (followed by ``/<workspace name>``)
MODEL_SERVER = "powerbi://api.powerbi.com/v1.0/myorg"
_OUTCOMES = (RefreshStatus.COMPLETED, RefreshStatus.FAILED, RefreshStatus.CANCELLED)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _outcome(outcome: str) -> RefreshStatus:
    status = RefreshStatus.parse(outcome)
    if status not in _OUTCOMES:
        msg = f"Invalid dataflow outcome {outcome!r}: expected Completed (or Success), Failed or Cancelled."
        raise ValueError(msg)
    return status


@dataclass
class FakeDataflow:
    """A dataflow of the fake service and how its next refreshes end.

    :param dataflow: the dataflow record.
    :param outcome: final status of refreshes (``Completed``, ``Failed`` or ``Cancelled``).
    :param polls: how many state queries report ``InProgress`` before the outcome.
    :param error_message: error message reported with a failure (default: like the real client's).
    :param upstream: ids of the dataflows it reads.
    :param history: its transactions, newest first.
    :param running: transaction id -> state queries left before it ends.
    """

    dataflow: DataflowInfo
    outcome: str = "Completed"
    polls: int = 1
    error_message: str | None = None
    upstream: list[str] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)


class FakeDataflows:
    """Dataflows and lineage of the fake client (mixed into ``FakePowerBIClient``, which calls
    :meth:`_init_dataflows` and turns :data:`DATAFLOW_METHODS` into mocks)."""

    workspaces: dict[str, Workspace]
    datasets: dict[str, FakeDataset]

    def _workspace(self, key: str | Workspace, *, create: bool = False) -> Workspace:
        raise NotImplementedError  # FakePowerBIClient._workspace

    def _init_dataflows(self) -> None:
        self.dataflows: dict[str, FakeDataflow] = {}
        #: dataset id -> ids of the dataflows it reads
        self.dataset_links: dict[str, list[str]] = {}
        #: dataset id -> its data sources (``link_model`` adds composite-model links)
        self.datasources: dict[str, list[Datasource]] = {}

    # -- programming -------------------------------------------------------------------------
    def add_dataflow(
        self,
        workspace: str,
        name: str,
        *,
        id: str | None = None,
        outcome: str = "Completed",
        polls: int = 1,
        error_message: str | None = None,
        upstream: Iterable[str] = (),
    ) -> FakeDataflow:
        """Add a dataflow to a workspace (by name or id; created if missing) with its refresh outcome; ``upstream``:
        the dataflows it reads (ids, or names unique across workspaces), which must exist already."""
        _outcome(outcome)
        ws = self._workspace(workspace, create=True)
        info = DataflowInfo(id=id or str(uuid.uuid4()), name=name, workspace_id=ws.id)
        fake = FakeDataflow(info, outcome, polls, error_message)
        fake.upstream = self._dataflow_refs(upstream, reader=info.id)
        self.dataflows[info.id] = fake
        return fake

    def link_dataflow(self, workspace: str | None, dataflow: str, upstream: Iterable[str]) -> None:
        """Make a dataflow (of ``workspace``, or of any workspace when ``None``) read the ``upstream`` dataflows."""
        fake = self._dataflow(dataflow, workspace)
        links = self._dataflow_refs(upstream, reader=fake.dataflow.id)
        fake.upstream = list(dict.fromkeys([*fake.upstream, *links]))

    def link_dataset(self, workspace: str | None, dataset: str, upstream_dataflows: Iterable[str]) -> None:
        """Make a dataset (of ``workspace``, or of any workspace when ``None``) read the ``upstream_dataflows``
        (ids, or names unique across workspaces)."""
        ds = self._any_dataset(dataset, workspace)
        links = self.dataset_links.setdefault(ds.dataset.id, [])
        links[:] = dict.fromkeys([*links, *self._dataflow_refs(upstream_dataflows)])

    def link_model(self, dataset: str, upstream_datasets: Iterable[str]) -> list[Datasource]:
        """Make ``dataset`` a composite model reading the ``upstream_datasets`` (ids, or names unique across
        workspaces): each becomes an ``AnalysisServices`` data source on ``powerbi://…/myorg/<workspace name>``
        whose database is the model's name, as Power BI lists it. Returns the data sources added."""
        reader = self._any_dataset(dataset).dataset
        sources = self.datasources.setdefault(reader.id, [])
        added = []
        for ref in [upstream_datasets] if isinstance(upstream_datasets, str) else upstream_datasets:
            upstream = self._any_dataset(ref).dataset
            if upstream.id == reader.id:
                msg = f"Dataset {reader.name!r} cannot read itself."
                raise ValueError(msg)
            ws = self._workspace(upstream.workspace_id)
            details = {"server": f"{MODEL_SERVER}/{ws.name}", "database": upstream.name}
            if all(s.connection_details != details for s in sources):
                added.append(Datasource("AnalysisServices", details))
        sources.extend(added)
        return added

    def dataflow_target(self, workspace: str, dataflow: str, notify_option: str = "NoNotification") -> Target:
        """The resolved :class:`Target` of a dataflow (workspace and dataflow names or ids)."""
        return self._resolve_dataflow(Dataflow(dataflow, workspace, notify_option=notify_option))

    # -- lookups ------------------------------------------------------------------------------
    def _dataflow(self, key: str, workspace: str | Workspace | None = None) -> FakeDataflow:
        """A dataflow by id or name (case-insensitive), in ``workspace`` or, when ``None``, in any (unique)."""
        ws = None if workspace is None else self._workspace(workspace)
        found = [f for f in self.dataflows.values() if (ws is None or f.dataflow.workspace_id == ws.id)
                 and key.casefold() in (f.dataflow.id.casefold(), f.dataflow.name.casefold())]
        where = f" in workspace {ws.name!r}" if ws is not None else ""
        if not found:
            raise NotFoundError(f"dataflow {key!r} not found{where}", status=404, workspace=ws.name if ws else None)
        if len(found) > 1:
            msg = f"several dataflows are named {key!r}{where}: use an id or name the workspace"
            raise ValueError(msg)
        return found[0]

    def _dataflow_refs(self, refs: Iterable[str], reader: str | None = None) -> list[str]:
        ids = [self._dataflow(ref).dataflow.id for ref in ([refs] if isinstance(refs, str) else refs)]
        if reader is not None and reader in ids:
            msg = f"Dataflow {reader!r} cannot read itself."
            raise ValueError(msg)
        return list(dict.fromkeys(ids))

    def _any_dataset(self, key: str, workspace: str | None = None) -> FakeDataset:
        ws = None if workspace is None else self._workspace(workspace)
        found = [f for f in self.datasets.values() if (ws is None or f.dataset.workspace_id == ws.id)
                 and key in (f.dataset.id, f.dataset.name)]
        if len(found) != 1:
            msg = f"dataset {key!r} {'not found' if not found else 'is ambiguous: use its id or name the workspace'}"
            raise (NotFoundError(msg, status=404, dataset=key) if not found else ValueError(msg))
        return found[0]

    def _flow_of(self, item: Target | Handle) -> FakeDataflow:
        return self._dataflow(item.dataset_id, item.workspace_id)

    # -- resolving ----------------------------------------------------------------------------
    def _resolve_dataflow(self, refresh: Dataflow, default_workspace: str | None = None) -> Target:
        ref = refresh.workspace or default_workspace
        if not ref:
            msg = (f"No workspace given for dataflow {refresh.dataflow!r}: pass workspace= to Dataflow(...), or set a "
                   "default workspace on the task.")
            raise ConfigurationError(msg)
        ws = self._allowed_workspace(ref)
        info = self._dataflow(refresh.dataflow, ws).dataflow
        return Target(ws.id, ws.name, info.id, info.name, refresh.options, ws.is_on_dedicated_capacity,
                      item="dataflow")

    # -- refreshes ----------------------------------------------------------------------------
    def _start_dataflow(self, target: Target) -> dt.datetime:
        fake = self._flow_of(target)
        notify = str(getattr(target.options.notify_option, "value", target.options.notify_option) or "NoNotification")
        if notify not in DATAFLOW_NOTIFY_OPTIONS:
            msg = f"Invalid notify_option {notify!r} for a refresh of dataflow {target.dataset_name!r}."
            raise ConfigurationError(msg)
        if fake.running:
            raise RefreshAlreadyRunningError(
                f"a refresh of dataflow {target.dataset_name!r} is already running", status=400,
                workspace=target.workspace_name)
        requested_at = dt.datetime.now(dt.timezone.utc)
        transaction = str(uuid.uuid4())
        fake.running[transaction] = fake.polls
        fake.history.insert(0, HistoryEntry(transaction, ON_DEMAND, RefreshStatus.IN_PROGRESS, start=_iso(requested_at)))
        return requested_at

    def _dataflow_state(self, handle: Handle) -> RefreshState:
        fake = self._flow_of(handle)
        entry = next((e for e in fake.history if e.request_id == handle.refresh_id), None)
        if entry is None:
            raise NotFoundError(f"transaction {handle.refresh_id} of dataflow {handle.dataset_name!r} not found",
                                status=404, workspace=handle.workspace_name)
        remaining = fake.running.get(entry.request_id)
        if remaining is not None and remaining > 0:
            fake.running[entry.request_id] = remaining - 1
        elif remaining is not None:
            entry = self._end(fake, entry, _outcome(fake.outcome))
        return RefreshState(entry.status, start=entry.start, end=entry.end, error_code=entry.error_code,
                            error_message=entry.error_message, refresh_type=entry.refresh_type)

    def _end(self, fake: FakeDataflow, entry: HistoryEntry, status: RefreshStatus) -> HistoryEntry:
        """End a running transaction with ``status`` (in the history too)."""
        fake.running.pop(entry.request_id, None)
        failed = status is RefreshStatus.FAILED
        message = fake.error_message or (
            f"Power BI reports transaction {entry.request_id} of the dataflow as Failed; its refresh history in the "
            "Power BI portal (Settings > Refresh history) names the failing entity.")
        ended = HistoryEntry(entry.request_id, entry.refresh_type, status, start=entry.start,
                             end=_iso(dt.datetime.now(dt.timezone.utc)),
                             error_code="DataflowRefreshFailed" if failed else None,
                             error_message=message if failed else None)
        fake.history = [ended if e.request_id == entry.request_id else e for e in fake.history]
        return ended

    def _dataflow_history(self, workspace_id: str, dataflow_id: str) -> list[HistoryEntry]:
        return list(self._dataflow(dataflow_id, workspace_id).history)

    def _cancel_dataflow(self, handle: Handle) -> None:
        """Cancel the transaction (harmless when it has ended or is unknown, as Power BI answers then)."""
        fake = self._flow_of(handle)
        entry = next((e for e in fake.history if e.request_id == handle.refresh_id), None)
        if entry is not None and entry.request_id in fake.running:
            self._end(fake, entry, RefreshStatus.CANCELLED)

    # -- the client surface -------------------------------------------------------------------
    def _list_dataflows(self, workspace: str | Workspace) -> list[DataflowInfo]:
        ws = self._workspace(workspace)
        return [f.dataflow for f in self.dataflows.values() if f.dataflow.workspace_id == ws.id]

    def _get_dataflow(self, workspace: str | Workspace, name_or_id: str) -> DataflowInfo:
        return self._dataflow(name_or_id, workspace).dataflow

    def _allowed_workspace(self, ref: str) -> Workspace:
        return self._workspace(ref)

    def _dataset_upstream_dataflows(self, workspace: str | Workspace, dataset: str | None = None
                                    ) -> list[UpstreamDataflow]:
        ws = self._workspace(workspace)
        readers = [f.dataset for f in self.datasets.values() if f.dataset.workspace_id == ws.id
                   and (dataset is None or dataset in (f.dataset.id, f.dataset.name))]
        return [UpstreamDataflow(ds.id, flow, self.dataflows[flow].dataflow.workspace_id)
                for ds in readers for flow in self.dataset_links.get(ds.id, ())]

    def _dataflow_upstream_dataflows(self, dataflow: DataflowInfo) -> list[UpstreamDataflow]:
        fake = self._dataflow(dataflow.id, dataflow.workspace_id)
        return [UpstreamDataflow(fake.dataflow.id, flow, self.dataflows[flow].dataflow.workspace_id)
                for flow in fake.upstream]

    def _list_datasources(self, target: Target) -> list[Datasource]:
        if target.dataset_id not in self.datasets:
            raise NotFoundError(f"dataset {target.dataset_name!r} not found", status=404, dataset=target.dataset_name)
        return list(self.datasources.get(target.dataset_id, ()))
