"""An in-memory, programmable stand-in for ``PowerBIClient`` for pure unit tests.

Every public method is a ``pytest-mock`` ``MagicMock`` whose side effect is the in-memory
behaviour, so tests both program outcomes and assert on calls::

    def test_selects_sales(pbi_fake_client):
        pbi_fake_client.add_dataset("Finance", "Sales", outcome="Failed", error_code="ModelRefreshFailed")
        handle = pbi_fake_client.trigger_refresh(pbi_fake_client.target("Finance", "Sales"))
        assert pbi_fake_client.get_refresh_state(handle).status == RefreshStatus.FAILED
        pbi_fake_client.trigger_refresh.assert_called_once()

Dataflows and lineage too (:mod:`pbi_taskflow.testing.fake_dataflows`): a transaction is ``InProgress`` for the
programmed number of state queries, then ends with the dataflow's outcome::

    def test_sales_reads_a_dataflow(pbi_fake_client):
        pbi_fake_client.add_dataflow("Ingest", "Sales ETL", polls=1, outcome="Failed")
        pbi_fake_client.add_dataset("Finance", "Sales")
        pbi_fake_client.link_dataset("Finance", "Sales", ["Sales ETL"])
        target = pbi_fake_client.resolve(Dataflow("Sales ETL", "Ingest"))
        pbi_fake_client.start_dataflow(target)
        [transaction] = pbi_fake_client.refresh_history(target.workspace_id, target.dataset_id, item="dataflow")
        handle = Handle(target.workspace_id, target.workspace_name, target.dataset_id, target.dataset_name,
                        transaction.request_id, "dataflow", transaction.start or "")
        assert pbi_fake_client.get_refresh_state(handle).status == RefreshStatus.IN_PROGRESS
        assert pbi_fake_client.get_refresh_state(handle).status == RefreshStatus.FAILED

For tests that need HTTP, MSAL and Airflow for real, use the ``emulator`` fixture instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pbi_taskflow.client import api
from pbi_taskflow.client.clouds import Cloud, get_cloud
from pbi_taskflow.client.models import (
    Dataflow,
    Dataset,
    Handle,
    HistoryEntry,
    Refresh,
    RefreshOptions,
    RefreshResult,
    RefreshState,
    RefreshStatus,
    Target,
    Workspace,
)
from pbi_taskflow.errors import ConfigurationError, NotFoundError, PowerBIError, RefreshAlreadyRunningError
from pbi_taskflow.testing.fake_dataflows import DATAFLOW_METHODS, FakeDataflow, FakeDataflows

__all__ = ["FakeDataflow", "FakeDataset", "FakePowerBIClient"]

_METHODS = (
    "list_workspaces",
    "get_workspace",
    "list_datasets",
    "get_dataset",
    "resolve",
    "trigger_refresh",
    "get_refresh_state",
    "refresh_history",
    "running_refresh",
    "cancel_refresh",
    "result_from",
    *DATAFLOW_METHODS,
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FakeDataset:
    """A dataset of the fake service and how its next refreshes end.

    :param dataset: the dataset record.
    :param outcome: final status of refreshes (``Completed``, ``Failed``, ``Cancelled``, ``Disabled``).
    :param polls: how many state queries report ``Unknown`` (in progress) before the outcome.
    :param error_code: error code reported with a failure.
    :param error_message: error message reported with a failure.
    """

    dataset: Dataset
    outcome: str = "Completed"
    polls: int = 1
    error_code: str | None = None
    error_message: str | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)


class FakePowerBIClient(FakeDataflows):
    """Programmable fake of the Power BI client; see the module docstring.

    :param mocker: the ``mocker`` fixture of pytest-mock.
    """

    def __init__(self, mocker: Any) -> None:
        self.workspaces: dict[str, Workspace] = {}
        self.datasets: dict[str, FakeDataset] = {}
        self._errors: dict[str, list[BaseException]] = {}
        self._cancelled: set[str] = set()
        self._init_dataflows()
        for name in _METHODS:
            impl = getattr(self, f"_{name}")
            setattr(self, name, mocker.MagicMock(name=f"PowerBIClient.{name}", side_effect=self._guarded(name, impl)))

    # -- programming -------------------------------------------------------------------------
    def add_workspace(self, name: str, *, id: str | None = None, dedicated: bool = True) -> Workspace:
        """Add a workspace (an id is generated when omitted)."""
        workspace = Workspace(id=id or str(uuid.uuid4()), name=name, is_on_dedicated_capacity=dedicated)
        self.workspaces[workspace.id] = workspace
        return workspace

    def add_dataset(
        self,
        workspace: str,
        name: str,
        *,
        id: str | None = None,
        outcome: str = "Completed",
        polls: int = 1,
        error_code: str | None = None,
        error_message: str | None = None,
        refreshable: bool = True,
    ) -> FakeDataset:
        """Add a dataset to a workspace (by name or id; created if missing) with its refresh outcome."""
        ws = self._workspace(workspace, create=True)
        dataset = Dataset(id=id or str(uuid.uuid4()), name=name, workspace_id=ws.id, is_refreshable=refreshable)
        fake = FakeDataset(dataset, outcome, polls, error_code, error_message)
        self.datasets[dataset.id] = fake
        return fake

    def fail_next(self, method: str, error: BaseException) -> None:
        """Make the next call of ``method`` raise ``error`` (queue several by calling again)."""
        if method not in _METHODS:
            msg = f"unknown method {method!r}; expected one of {list(_METHODS)}"
            raise ValueError(msg)
        self._errors.setdefault(method, []).append(error)

    def target(self, workspace: str, dataset: str, options: RefreshOptions | None = None) -> Target:
        """The resolved :class:`Target` for a workspace and dataset (names or ids)."""
        ws = self._workspace(workspace)
        ds = self._dataset(ws, dataset).dataset
        return Target(ws.id, ws.name, ds.id, ds.name, options or RefreshOptions(), ws.is_on_dedicated_capacity)

    # -- lookups ------------------------------------------------------------------------------
    def _workspace(self, key: str | Workspace, *, create: bool = False) -> Workspace:
        if isinstance(key, Workspace):
            key = key.id
        for ws in self.workspaces.values():
            if key in (ws.id, ws.name):
                return ws
        if create:
            return self.add_workspace(key)
        raise NotFoundError(f"workspace {key!r} not found; known: {sorted(w.name for w in self.workspaces.values())}",
                            status=404, workspace=key)

    def _dataset(self, ws: Workspace, key: str) -> FakeDataset:
        for fake in self.datasets.values():
            if fake.dataset.workspace_id == ws.id and key in (fake.dataset.id, fake.dataset.name):
                return fake
        raise NotFoundError(f"dataset {key!r} not found in workspace {ws.name!r}", status=404, workspace=ws.name,
                            dataset=key)

    def _guarded(self, name: str, impl: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            queued = self._errors.get(name)
            if queued:
                raise queued.pop(0)
            return impl(*args, **kwargs)

        return call

    # -- the client surface -------------------------------------------------------------------
    def _list_workspaces(self, name: str | None = None) -> list[Workspace]:
        return [ws for ws in self.workspaces.values() if name is None or ws.name == name]

    def _get_workspace(self, name_or_id: str) -> Workspace:
        return self._workspace(name_or_id)

    def _list_datasets(self, workspace: str | Workspace) -> list[Dataset]:
        ws = self._workspace(workspace)
        return [f.dataset for f in self.datasets.values() if f.dataset.workspace_id == ws.id]

    def _get_dataset(self, workspace: str | Workspace, dataset: str) -> Dataset:
        return self._dataset(self._workspace(workspace), dataset).dataset

    def _resolve(
        self, refresh: Refresh | Dataflow, default_workspace: str | None = None, defaults: RefreshOptions | None = None
    ) -> Target:
        if isinstance(refresh, Dataflow):
            return self._resolve_dataflow(refresh, default_workspace)
        workspace = refresh.workspace or default_workspace
        if not workspace:
            msg = f"No workspace given for dataset {refresh.dataset!r}: set workspace= on the refresh"
            raise ConfigurationError(msg, dataset=refresh.dataset)
        options = refresh.options.merged(defaults) if defaults is not None else refresh.options
        return self.target(workspace, refresh.dataset, options)

    def _trigger_refresh(self, target: Target) -> Handle:
        fake = self.datasets.get(target.dataset_id)
        if fake is None:
            raise NotFoundError(f"dataset {target.dataset_name!r} not found", status=404, dataset=target.dataset_name)
        if fake.running:
            raise RefreshAlreadyRunningError(
                f"a refresh of {target.dataset_name!r} is already running", status=409, dataset=target.dataset_name
            )
        refresh_id = str(uuid.uuid4())
        fake.running[refresh_id] = fake.polls
        kind = "enhanced" if target.options.is_enhanced else "standard"
        fake.history.insert(0, HistoryEntry(refresh_id, "ViaApi", RefreshStatus.UNKNOWN, start=_now()))
        return Handle(target.workspace_id, target.workspace_name, target.dataset_id, target.dataset_name, refresh_id,
                      kind, _now())

    def _get_refresh_state(self, handle: Handle) -> RefreshState:
        if handle.kind == "dataflow":
            return self._dataflow_state(handle)
        fake = self.datasets[handle.dataset_id]
        entry = next((e for e in fake.history if e.request_id == handle.refresh_id), None)
        start = entry.start if entry is not None else handle.requested_at
        remaining = fake.running.get(handle.refresh_id)
        if remaining is not None and remaining > 0:
            fake.running[handle.refresh_id] = remaining - 1
            return RefreshState(RefreshStatus.UNKNOWN, start=start)
        fake.running.pop(handle.refresh_id, None)
        cancelled = handle.refresh_id in self._cancelled
        status = RefreshStatus.CANCELLED if cancelled else RefreshStatus.parse(fake.outcome)
        end = (entry.end if entry is not None else None) or _now()
        state = RefreshState(status, start=start, end=end, error_code=None if status.is_success else fake.error_code,
                             error_message=None if status.is_success else fake.error_message)
        fake.history = [
            HistoryEntry(e.request_id, e.refresh_type, status, start=e.start, end=state.end,
                         error_code=state.error_code, error_message=state.error_message)
            if e.request_id == handle.refresh_id else e
            for e in fake.history
        ]
        return state

    def _refresh_history(self, workspace_id: str, dataset_id: str, top: int = 60, *, _names: Any = None,
                         item: str = "dataset") -> list[HistoryEntry]:
        if item == "dataflow":
            return self._dataflow_history(workspace_id, dataset_id)
        fake = self._dataset(self._workspace(workspace_id), dataset_id)
        return list(fake.history[:top])

    def _running_refresh(self, workspace_id: str, dataset_id: str, item: str = "dataset") -> HistoryEntry | None:
        if item == "dataflow":
            return next((e for e in self._dataflow_history(workspace_id, dataset_id) if not e.status.is_terminal), None)
        fake = self._dataset(self._workspace(workspace_id), dataset_id)
        return next((e for e in fake.history if e.request_id in fake.running), None)

    def _cancel_refresh(self, handle: Handle) -> None:
        if handle.kind == "dataflow":
            self._cancel_dataflow(handle)
            return
        fake = self.datasets[handle.dataset_id]
        if fake.running.pop(handle.refresh_id, None) is None:
            raise PowerBIError(f"refresh {handle.refresh_id} is not running", dataset=handle.dataset_name)
        fake.running[handle.refresh_id] = 0
        self._cancelled.add(handle.refresh_id)

    def _result_from(self, handle: Handle, state: RefreshState, cloud: Cloud | None = None,
                     **extra: Any) -> RefreshResult:
        return api.result_from(handle, state, cloud or get_cloud("public"), **extra)
