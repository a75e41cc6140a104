"""Dataflow calls of both clients: list and resolve dataflows, refresh them, read and cancel their transactions,
and read the lineage links of datasets and dataflows to the dataflows they read.

A dataflow refresh POST answers 200 without a body or an id: the transaction it started is found in
``GET …/transactions`` (started at or after the returned request time). Like a dataset's refresh POST it is sent
again only when it certainly did not arrive; a lost answer raises
:class:`~pbi_taskflow.errors.AmbiguousRefreshRequestError`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from pbi_taskflow.client import api
from pbi_taskflow.client.base import ClientBase, utcnow
from pbi_taskflow.client.models import (
    Dataflow,
    DataflowInfo,
    DataflowTransaction,
    Dataset,
    Handle,
    HistoryEntry,
    Refresh,
    RefreshOptions,
    RefreshState,
    RefreshStatus,
    Target,
    UpstreamDataflow,
    Workspace,
)
from pbi_taskflow.client.names import pick
from pbi_taskflow.client.resolve import NameResolver
from pbi_taskflow.errors import AmbiguousRefreshRequestError, ConfigurationError, PowerBIError

log = logging.getLogger("pbi_taskflow.client.sync")

#: ``notifyOption`` of a dataflow refresh (Power BI does not support ``MailOnCompletion`` for dataflows)
NOTIFY_OPTIONS = ("NoNotification", "MailOnFailure")


def _refresh_request(dataflow: DataflowInfo, notify_option: str) -> api.ApiRequest:
    if notify_option not in NOTIFY_OPTIONS:
        msg = (f"Invalid notify_option {notify_option!r} for a refresh of dataflow {dataflow.name!r}: expected "
               f"{' or '.join(NOTIFY_OPTIONS)} (Power BI does not support MailOnCompletion for dataflows).")
        raise ConfigurationError(msg)
    return api.trigger_dataflow_refresh(dataflow.workspace_id, dataflow.id, notify_option, dataflow=dataflow.name)


def _lost_answer(dataflow: DataflowInfo) -> Callable[[PowerBIError, dt.datetime], PowerBIError]:
    def error(exc: PowerBIError, requested_at: dt.datetime) -> PowerBIError:
        return AmbiguousRefreshRequestError(
            f"The refresh request for dataflow {dataflow.name!r} may have reached Power BI, but its answer was lost "
            f"(look for a transaction started since {requested_at.isoformat()}): {exc.message}",
            requested_at=requested_at.isoformat(), status=exc.status, code=exc.code, request_id=exc.request_id,
            workspace=dataflow.workspace_id)

    return error


def _started(dataflow: DataflowInfo, requested_at: dt.datetime) -> dt.datetime:
    log.info("Requested a refresh of dataflow %r; Power BI answers without an id, so its transaction is looked up in "
             "the dataflow's transactions next.", dataflow.name)
    return requested_at


def _links_of(links: list[UpstreamDataflow], dataset: Dataset | None) -> list[UpstreamDataflow]:
    return links if dataset is None else [x for x in links if x.reader_id.lower() == dataset.id.lower()]


def _requests(dataflow: DataflowInfo) -> tuple[api.ApiRequest, api.ApiRequest]:
    """The transactions and upstream-dataflows reads of ``dataflow``."""
    names = {"dataflow": dataflow.name}
    return (api.dataflow_transactions(dataflow.workspace_id, dataflow.id, **names),
            api.dataflow_upstream_dataflows(dataflow.workspace_id, dataflow.id, **names))


def _cancel_request(dataflow: DataflowInfo, transaction_id: str) -> api.ApiRequest:
    return api.cancel_dataflow_transaction(dataflow.workspace_id, transaction_id, dataflow=dataflow.name)


def info_of(item: Target | Handle) -> DataflowInfo:
    """The dataflow a dataflow :class:`Target` or :class:`Handle` refers to."""
    return DataflowInfo(item.dataset_id, item.dataset_name, item.workspace_id)


def as_history(transactions: list[DataflowTransaction]) -> list[HistoryEntry]:
    """A dataflow's transactions as refresh history entries (newest first), so one planner reads both."""
    return [HistoryEntry(request_id=t.id, refresh_type=t.refresh_type, status=t.status, start=t.start, end=t.end,
                         error_code="DataflowRefreshFailed" if t.status is RefreshStatus.FAILED else None,
                         error_message=_failure_text(t) if t.status is RefreshStatus.FAILED else None)
            for t in transactions]


def _failure_text(transaction: DataflowTransaction) -> str:
    return (f"Power BI reports transaction {transaction.id} of the dataflow as {transaction.raw_status or 'Failed'}; "
            "its refresh history in the Power BI portal (Settings > Refresh history) names the failing entity.")


def dataflow_state(handle: Handle, entries: list[HistoryEntry]) -> HistoryEntry | None:
    """The transaction ``handle`` follows among a dataflow's ``entries``."""
    return api.find_entry(entries, handle.refresh_id)


def notify_of(target: Target) -> str:
    """The ``notifyOption`` of a dataflow target's refresh request."""
    notify = target.options.notify_option
    return str(getattr(notify, "value", notify) or "NoNotification")


class DataflowMethods(NameResolver, ClientBase):
    """The dataflow calls of :class:`~pbi_taskflow.client.sync.PowerBIClient` (which sends the requests)."""

    def send_start(self, request: api.ApiRequest, ambiguous: Callable[[PowerBIError, dt.datetime], PowerBIError]
                   ) -> tuple[api.ApiResponse, dt.datetime]:
        raise NotImplementedError  # PowerBIClient.send_start

    def list_dataflows(self, workspace: Workspace | str) -> list[DataflowInfo]:
        """Dataflows of a workspace (a :class:`Workspace`, an id or a name)."""
        ws_id, ws_name = self._workspace_ref(workspace)
        return api.parse_dataflows(self.call(api.list_dataflows(ws_id, workspace=ws_name)).body, ws_id)

    def get_dataflow(self, workspace: Workspace | str, name_or_id: str) -> DataflowInfo:
        """The dataflow with this id, or this name (case-insensitive, exact), in ``workspace``.

        :raises AmbiguousNameError: several dataflows have the name.
        :raises UnknownNameError: none has it; the closest names are listed.
        """
        ws_id, ws_name = self._workspace_ref(workspace)
        return pick(self.list_dataflows(Workspace(ws_id, ws_name)), name_or_id, kind="dataflow", container=ws_name)

    def resolve_dataflow(self, name_or_id: str, workspace: str) -> DataflowInfo:
        """:meth:`get_dataflow` for a refresh: the workspace allow-list is enforced first, as for datasets."""
        return self.get_dataflow(self.allowed_workspace(workspace), name_or_id)

    def resolve(self, refresh: Refresh | Dataflow, default_workspace: str | None = None,
                defaults: RefreshOptions | None = None) -> Target:
        """Names to ids: the :class:`Target` of a :class:`Refresh` or a :class:`Dataflow` (allow-list first).

        Task-wide refresh options (``defaults``) apply to datasets only.
        """
        if not isinstance(refresh, Dataflow):
            return super().resolve(refresh, default_workspace, defaults)
        ref = refresh.workspace or default_workspace
        if not ref or not ref.strip():
            msg = (f"No workspace given for dataflow {refresh.dataflow!r}: pass workspace= to Dataflow(...), or set a "
                   "default workspace on the task.")
            raise ConfigurationError(msg)
        ws = self.allowed_workspace(ref)
        dataflow = self.get_dataflow(ws, refresh.dataflow)
        return Target(workspace_id=ws.id, workspace_name=ws.name, dataset_id=dataflow.id, dataset_name=dataflow.name,
                      options=refresh.options, on_dedicated_capacity=ws.is_on_dedicated_capacity,
                      profile_id=getattr(self, "profile_id", None), item="dataflow")

    def start_dataflow(self, target: Target) -> dt.datetime:
        """Start the refresh of a dataflow :class:`Target`; returns when its request was sent (UTC)."""
        return self.trigger_dataflow_refresh(info_of(target), notify_of(target))

    def dataflow_history(self, target: Target | Handle) -> list[HistoryEntry]:
        """A dataflow's transactions as history entries, newest first."""
        return as_history(self.dataflow_transactions(info_of(target)))

    def dataflow_refresh_state(self, handle: Handle) -> RefreshState:
        """The state of the transaction ``handle`` follows (``NotStarted`` while it is not listed, up to the grace)."""
        return self.standard_state(handle, dataflow_state(handle, self.dataflow_history(handle)))

    def cancel_dataflow(self, handle: Handle) -> None:
        """Cancel the transaction ``handle`` follows (harmless when it has ended)."""
        answer = self.cancel_dataflow_transaction(info_of(handle), handle.refresh_id)
        log.warning("Asked Power BI to cancel transaction %s of dataflow %r: %s.", handle.refresh_id,
                    handle.dataset_name, answer or "no answer")

    def trigger_dataflow_refresh(self, dataflow: DataflowInfo, notify_option: str = "NoNotification") -> dt.datetime:
        """Start a refresh of ``dataflow``; returns when the request that started it was sent (UTC).

        :raises RefreshAlreadyRunningError: a refresh of the dataflow is running.
        :raises AmbiguousRefreshRequestError: the request may or may not have started a refresh.
        """
        _, requested_at = self.send_start(_refresh_request(dataflow, notify_option), _lost_answer(dataflow))
        return _started(dataflow, requested_at)

    def dataflow_transactions(self, dataflow: DataflowInfo) -> list[DataflowTransaction]:
        """The dataflow's refresh transactions, newest first."""
        return api.parse_transactions(self.call(_requests(dataflow)[0]).body)

    def cancel_dataflow_transaction(self, dataflow: DataflowInfo, transaction_id: str) -> str | None:
        """Ask Power BI to cancel a transaction of ``dataflow``; returns what it says (``successfullyMarked``,
        ``alreadyConcluded``, ``notFound`` or ``invalid``)."""
        return api.parse_cancel_status(self.call(_cancel_request(dataflow, transaction_id)).body)

    def dataflow_upstream_dataflows(self, dataflow: DataflowInfo) -> list[UpstreamDataflow]:
        """The dataflows ``dataflow`` reads (possibly in other workspaces)."""
        return api.parse_upstream_dataflows(self.call(_requests(dataflow)[1]).body, dataflow.id)

    def dataset_upstream_dataflows(self, workspace: Workspace | str, dataset: str | None = None
                                   ) -> list[UpstreamDataflow]:
        """The dataflows each dataset of ``workspace`` reads (only ``dataset``'s, a name or id, when given)."""
        ws_id, ws_name = self._workspace_ref(workspace)
        links = api.parse_dataset_dataflow_links(self.call(api.dataset_upstream_dataflows(ws_id, workspace=ws_name)).body)
        return _links_of(links, None if dataset is None else self.get_dataset(Workspace(ws_id, ws_name), dataset))


class AsyncDataflowMethods(ClientBase):
    """The dataflow calls of :class:`~pbi_taskflow.client.aio.AsyncPowerBIClient` (which sends the requests)."""

    async def call(self, request: api.ApiRequest) -> api.ApiResponse:
        raise NotImplementedError  # AsyncPowerBIClient.call

    async def get_workspace(self, name_or_id: str) -> Workspace:
        raise NotImplementedError  # AsyncPowerBIClient.get_workspace

    async def get_dataset(self, workspace: Workspace | str, name_or_id: str) -> Dataset:
        raise NotImplementedError  # AsyncPowerBIClient.get_dataset

    async def _workspace(self, workspace: Workspace | str) -> Workspace:
        return workspace if isinstance(workspace, Workspace) else await self.get_workspace(workspace)

    async def list_dataflows(self, workspace: Workspace | str) -> list[DataflowInfo]:
        """Dataflows of a workspace (a :class:`Workspace`, an id or a name)."""
        ws = await self._workspace(workspace)
        return api.parse_dataflows((await self.call(api.list_dataflows(ws.id, workspace=ws.name))).body, ws.id)

    async def get_dataflow(self, workspace: Workspace | str, name_or_id: str) -> DataflowInfo:
        """The dataflow with this id or (case-insensitive, exact) name in ``workspace``."""
        ws = await self._workspace(workspace)
        return pick(await self.list_dataflows(ws), name_or_id, kind="dataflow", container=ws.name)

    async def trigger_dataflow_refresh(self, dataflow: DataflowInfo, notify_option: str = "NoNotification") -> dt.datetime:
        """Start a refresh of ``dataflow`` (same rules as the sync client); returns when its request was sent."""
        request = _refresh_request(dataflow, notify_option)
        attempt = 1
        while True:
            requested_at = utcnow()
            try:
                await self.call(request)
                return _started(dataflow, requested_at)
            except PowerBIError as exc:
                await self.retry.await_wait(self.start_retry_wait(exc, attempt, request, requested_at,
                                                                  _lost_answer(dataflow)))
                attempt += 1

    async def dataflow_transactions(self, dataflow: DataflowInfo) -> list[DataflowTransaction]:
        """The dataflow's refresh transactions, newest first."""
        return api.parse_transactions((await self.call(_requests(dataflow)[0])).body)

    async def cancel_dataflow_transaction(self, dataflow: DataflowInfo, transaction_id: str) -> str | None:
        """Ask Power BI to cancel a transaction of ``dataflow``; returns what it says."""
        return api.parse_cancel_status((await self.call(_cancel_request(dataflow, transaction_id))).body)

    async def dataflow_history(self, target: Target | Handle) -> list[HistoryEntry]:
        """A dataflow's transactions as history entries, newest first."""
        return as_history(await self.dataflow_transactions(info_of(target)))

    async def dataflow_refresh_state(self, handle: Handle) -> RefreshState:
        """The state of the transaction ``handle`` follows (same rules as the sync client)."""
        return self.standard_state(handle, dataflow_state(handle, await self.dataflow_history(handle)))

    async def cancel_dataflow(self, handle: Handle) -> None:
        """Cancel the transaction ``handle`` follows (harmless when it has ended)."""
        answer = await self.cancel_dataflow_transaction(info_of(handle), handle.refresh_id)
        log.warning("Asked Power BI to cancel transaction %s of dataflow %r: %s.", handle.refresh_id,
                    handle.dataset_name, answer or "no answer")

    async def dataflow_upstream_dataflows(self, dataflow: DataflowInfo) -> list[UpstreamDataflow]:
        """The dataflows ``dataflow`` reads (possibly in other workspaces)."""
        return api.parse_upstream_dataflows((await self.call(_requests(dataflow)[1])).body, dataflow.id)

    async def dataset_upstream_dataflows(self, workspace: Workspace | str, dataset: str | None = None
                                         ) -> list[UpstreamDataflow]:
        """The dataflows each dataset of ``workspace`` reads (only ``dataset``'s, a name or id, when given)."""
        ws = await self._workspace(workspace)
        body = (await self.call(api.dataset_upstream_dataflows(ws.id, workspace=ws.name))).body
        return _links_of(api.parse_dataset_dataflow_links(body),
                         None if dataset is None else await self.get_dataset(ws, dataset))
