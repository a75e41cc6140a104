"""Emulated Power BI REST routes of dataflows: list, export, refresh, transactions, cancel and lineage links.

Choices where Power BI's behaviour is not documented (also in docs/testing.md):

- a refresh POST while a transaction of the dataflow runs answers 400 ``InvalidRequest`` "Another refresh request
  is already executing", as a dataset's refresh POST does;
- the POST needs a body with ``notifyOption`` (``RefreshRequest`` requires it); ``MailOnCompletion``, which Power BI
  does not support for dataflows, answers 400;
- a cancel answers 200 with ``status`` ``successfullyMarked``, ``alreadyConcluded`` or ``notFound``, spelled as
  the swagger's enum (Microsoft's example spells ``SuccessfullyMarked``).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable
from typing import Any

from pbi_taskflow.emulator.dataflows import NOTIFY_OPTIONS, Dataflows, DataflowState, Transaction
from pbi_taskflow.emulator.powerbi import PowerBI, history_time, pbi_error
from pbi_taskflow.emulator.state import WorkspaceState
from pbi_taskflow.emulator.wire import Request, Response, empty_response, json_response

PROCESS_TYPES = ("default", "processFull")


def dataflow_json(df: DataflowState) -> dict[str, Any]:
    """A dataflow as ``GET …/dataflows`` lists it."""
    return {"objectId": df.id, "name": df.name, "description": df.description, "configuredBy": df.configured_by}


def transaction_json(transaction: Transaction, now: dt.datetime) -> dict[str, Any]:
    """A transaction as ``GET …/dataflows/{id}/transactions`` lists it (``endTime`` once it ended)."""
    doc = {"id": transaction.id, "refreshType": transaction.refresh_type,
           "startTime": history_time(transaction.start), "status": transaction.status(now)}
    if not transaction.is_running(now):
        doc["endTime"] = history_time(transaction.end)
    return doc


def model_json(df: DataflowState) -> dict[str, Any]:
    """The exported definition (``model.json``) that ``GET …/dataflows/{id}`` answers."""
    return {"name": df.name, "description": df.description, "version": "1.0", "culture": "en-US",
            "modifiedTime": history_time(df.created),
            "pbi:mashup": {"fastCombine": False, "allowNativeQueries": False, "queriesMetadata": {},
                           "document": "section Section1;"},
            "annotations": [], "entities": []}


class DataflowAPI:
    """The dataflow routes, answered for :class:`~pbi_taskflow.emulator.powerbi.PowerBI` (under its state's lock)."""

    def __init__(self, powerbi: PowerBI) -> None:
        self.powerbi = powerbi
        self.dataflows = Dataflows(powerbi.state)

    def handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {"dataflows": self.list, "dataflow": self.export, "dataflow_refresh": self.refresh,
                "dataflow_transactions": self.transactions, "dataflow_cancel": self.cancel,
                "dataflow_upstream_dataflows": self.upstream, "dataset_upstream_dataflows": self.dataset_links}

    def _workspace(self, request: Request, params: dict[str, str]) -> WorkspaceState | Response:
        found = self.powerbi._find(request, {"g": params["g"]})
        return found if isinstance(found, Response) else found[0]

    def _dataflow(self, request: Request, params: dict[str, str]) -> DataflowState | Response:
        ws = self._workspace(request, params)
        if isinstance(ws, Response):
            return ws
        df = ws.dataflows.get(params["f"].lower())
        if df is None:
            return pbi_error(404, "ItemNotFound", f"Dataflow {params['f']} is not found in workspace {ws.id}; "
                             "verify the dataflow id and that the caller may use the workspace.")
        return df

    def _listing(self, suffix: str, value: list[dict[str, Any]]) -> Response:
        return json_response(200, {"@odata.context": f"{self.powerbi._api_root()}/$metadata#{suffix}",
                                   "value": value})

    def list(self, request: Request, params: dict[str, str]) -> Response:
        ws = self._workspace(request, params)
        if isinstance(ws, Response):
            return ws
        return self._listing("dataflows", [dataflow_json(df) for df in ws.dataflows.values()])

    def export(self, request: Request, params: dict[str, str]) -> Response:
        df = self._dataflow(request, params)
        return df if isinstance(df, Response) else json_response(200, model_json(df))

    def refresh(self, request: Request, params: dict[str, str]) -> Response:
        """Start a transaction; 200 without a body or an id, as Power BI answers."""
        df = self._dataflow(request, params)
        if isinstance(df, Response):
            return df
        notify = self._notify_option(request)
        if isinstance(notify, Response):
            return notify
        process = request.query.get("processType")
        if process is not None and process not in PROCESS_TYPES:
            return pbi_error(400, "InvalidRequest", f"Invalid processType {process!r}: expected one of "
                             f"{', '.join(PROCESS_TYPES)}.")
        running = df.running(self.powerbi.state.clock.now())
        if running is not None:
            return pbi_error(400, "InvalidRequest", "Invalid dataflow refresh request. Another refresh request is "
                             f"already executing for dataflow {df.id} (transaction {running.id}).")
        self.dataflows.start(df, caller=request.caller, notify_option=notify)
        return empty_response(200)

    @staticmethod
    def _notify_option(request: Request) -> str | Response:
        try:
            body = request.json()
        except ValueError as exc:
            return pbi_error(400, "InvalidRequest", f"The request body is not valid JSON: {exc}.")
        if not isinstance(body, dict) or "notifyOption" not in body:
            return pbi_error(400, "InvalidRequest", "A dataflow refresh needs a body with notifyOption, e.g. "
                             '{"notifyOption": "NoNotification"}.')
        unknown = sorted(set(body) - {"notifyOption"})
        if unknown:
            return pbi_error(400, "InvalidRequest", f"Unknown field(s) {unknown} in a dataflow refresh request; "
                             "only notifyOption is accepted.")
        notify = body["notifyOption"]
        if notify not in NOTIFY_OPTIONS:
            return pbi_error(400, "InvalidRequest", f"Invalid notifyOption {notify!r} for a dataflow refresh: "
                             f"expected {' or '.join(NOTIFY_OPTIONS)} (MailOnCompletion is not supported).")
        return str(notify)

    def transactions(self, request: Request, params: dict[str, str]) -> Response:
        df = self._dataflow(request, params)
        if isinstance(df, Response):
            return df
        now = self.powerbi.state.clock.now()
        return self._listing("transactions", [transaction_json(t, now) for t in df.history()])

    def cancel(self, request: Request, params: dict[str, str]) -> Response:
        ws = self._workspace(request, params)
        if isinstance(ws, Response):
            return ws
        transaction_id = urllib.parse.unquote(params["t"])
        transaction = self.dataflows.find_transaction(ws, transaction_id)
        now = self.powerbi.state.clock.now()
        if transaction is None:
            status = "notFound"
        elif not transaction.is_running(now):
            status = "alreadyConcluded"
        else:
            transaction.cancelled_at = now
            status = "successfullyMarked"
        return json_response(200, {"transactionId": transaction_id, "status": status})

    def upstream(self, request: Request, params: dict[str, str]) -> Response:
        df = self._dataflow(request, params)
        if isinstance(df, Response):
            return df
        return self._listing("dataflows", [{"targetDataflowId": f, "groupId": w} for w, f in df.upstream])

    def dataset_links(self, request: Request, params: dict[str, str]) -> Response:
        """Every dataset of the workspace with each dataflow it reads (``workspaceObjectId``: the dataflow's)."""
        ws = self._workspace(request, params)
        if isinstance(ws, Response):
            return ws
        links = [{"datasetObjectId": ds.id, "dataflowObjectId": f, "workspaceObjectId": w}
                 for ds in ws.datasets.values() for w, f in ds.upstream_dataflows]
        return self._listing("datasetToDataflowLinks", links)
