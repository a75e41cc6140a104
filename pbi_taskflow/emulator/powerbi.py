"""Emulated Power BI REST routes: groups, datasets, refresh trigger, history, execution details and cancel."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable
from typing import Any

from pbi_taskflow.emulator.dataflows import DATAFLOW_ROUTES, dataflow_handlers
from pbi_taskflow.emulator.entra import TokenStore
from pbi_taskflow.emulator.odata import FilterError, compile_filter
from pbi_taskflow.emulator.profiles import TENANCY_ROUTES, check_profile, tenancy_handlers
from pbi_taskflow.emulator.refresh_body import BodyError, parse_refresh_body
from pbi_taskflow.emulator.state import (
    SHARED_DAILY_LIMIT,
    DatasetState,
    PowerBIState,
    RefreshRun,
    WorkspaceState,
    new_id,
)
from pbi_taskflow.emulator.wire import Request, Response, empty_response, json_response

Handler = Callable[[Request, dict[str, str]], Response]

def _path(suffix: str) -> re.Pattern[str]:
    return re.compile(rf"^/v1\.0/myorg/groups{suffix}/?$", re.IGNORECASE)


_DATASET = "/(?P<g>[^/]+)/datasets/(?P<d>[^/]+)"
ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    ("GET", "groups", _path("")),
    ("GET", "datasets", _path("/(?P<g>[^/]+)/datasets")),
    ("GET", "dataset", _path(_DATASET)),
    ("GET", "tables", _path(f"{_DATASET}/tables")),
    ("POST", "refresh_post", _path(f"{_DATASET}/refreshes")),
    ("GET", "history", _path(f"{_DATASET}/refreshes")),
    ("GET", "details", _path(f"{_DATASET}/refreshes/(?P<r>[^/]+)")),
    ("DELETE", "cancel", _path(f"{_DATASET}/refreshes/(?P<r>[^/]+)")),
]

TOKEN_EXPIRED = {"error": {"code": "TokenExpired",
                           "message": "Access token has expired, resubmit with a new access token"}}
THROTTLED = ("You have exceeded the amount of requests allowed in the current time frame and further requests will "
             "fail. Retry in {} seconds.")


def history_time(value: dt.datetime) -> str:
    """History timestamps: ISO 8601 with milliseconds and ``Z``."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def details_time(value: dt.datetime) -> str:
    """Execution-details timestamps: no offset, as in the service's examples (UTC)."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def pbi_error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}})


def not_authorized() -> Response:
    """The 401 the service sends when the service principal may not call the API or the workspace."""
    return json_response(401, {"error": {"code": "PowerBINotAuthorizedException", "pbi.error": {
        "code": "PowerBINotAuthorizedException", "parameters": {}, "details": [], "exceptionCulprit": 1}}})


def entity_not_found() -> Response:
    """The 404 the service sends for an unknown (or inaccessible) workspace."""
    return json_response(404, {"error": {"code": "PowerBIEntityNotFound", "pbi.error": {
        "code": "PowerBIEntityNotFound", "parameters": {}, "details": [], "exceptionCulprit": 1}}})


def unknown_refresh_object(ds: DatasetState, what: str) -> Response:
    """The 400 for an enhanced refresh whose ``objects`` name a table or partition the model lacks.

    Power BI refuses such a request with 400 before starting anything, its error naming the object; the
    exact wording of its message is not documented, so this one is the emulator's own, kept clear.
    """
    return pbi_error(400, "InvalidRequest", f"Invalid dataset refresh request. The {what} named in 'objects' does "
                     f"not exist in dataset {ds.id} ('{ds.name}'); no refresh was started.")


def dataset_not_found(dataset_id: str) -> Response:
    return pbi_error(404, "ItemNotFound", f"Dataset {dataset_id} is not found! please verify datasetId is correct "
                     "and user have sufficient permissions.")


class PowerBI:
    """The Power BI REST part of the emulator.

    :param state: workspaces, datasets and refreshes.
    :param tokens: the access tokens Entra issued (checked on every call).
    :param api_root: returns ``https://127.0.0.1:PORT/v1.0/myorg``.
    """

    def __init__(self, state: PowerBIState, tokens: TokenStore, api_root: Callable[[], str]) -> None:
        self.state = state
        self.tokens = tokens
        self._api_root = api_root
        self.handlers: dict[str, Handler] = {
            "groups": self.groups, "datasets": self.datasets, "dataset": self.dataset, "tables": self.tables,
            "refresh_post": self.refresh_post, "history": self.history, "details": self.details,
            "cancel": self.cancel, "refresh_post_lost": functools.partial(self.refresh_post, lost=True),
        }
        self.handlers.update({**dataflow_handlers(self), **tenancy_handlers(self)})

    @staticmethod
    def route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The endpoint name and path parameters of a Power BI request, or ``None``."""
        for route_method, endpoint, pattern in (*DATAFLOW_ROUTES, *TENANCY_ROUTES, *ROUTES):
            match = pattern.match(path)
            if match and method == route_method:
                return endpoint, match.groupdict()
        return None

    def authorize(self, request: Request) -> Response | None:
        """``None`` when the bearer token is valid, else the 401/403 answer."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._unauthorized("The request has no 'Authorization: Bearer <token>' header.")
        verdict = self.tokens.check(token.strip())
        if verdict == "expired":
            return json_response(403, TOKEN_EXPIRED)
        if verdict == "unknown":
            return self._unauthorized("The access token was not issued by this emulator's Entra ID.")
        request.caller = self.tokens.client_of(token.strip())
        return check_profile(self.state, request)  # X-PowerBI-Profile-Id: act as one of the app's profiles

    def caller_of(self, request: Request) -> str | None:
        """The client id of the request's bearer token (``None`` without a token this emulator issued)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.tokens.client_of(token.strip())

    def start_foreign(self, params: dict[str, str], refresh_type: str, duration: float | None) -> RefreshRun | None:
        """Start a refresh nobody asked for on the dataset of ``params`` (the ``race`` faults); None if one runs."""
        with self.state.lock:
            ws = self.state.workspaces.get(params.get("g", "").lower())
            ds = ws.datasets.get(params.get("d", "").lower()) if ws is not None else None
            if ds is None or not ds.refreshable or ds.running(self.state.clock.now()) is not None:
                return None
            enhanced = refresh_type == "ViaEnhancedApi"
            return self.state.start_refresh(ds, refresh_type=refresh_type, enhanced=enhanced, duration=duration,
                                            options={"type": "Full"} if enhanced else None)

    def _unauthorized(self, message: str) -> Response:
        response = pbi_error(401, "PowerBINotAuthorizedException", message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
        return response

    def handle(self, endpoint: str, request: Request, params: dict[str, str]) -> Response:
        denied = self.authorize(request)
        if denied is not None:
            return denied
        with self.state.lock:
            return self.handlers[endpoint](request, params)

    # --- lookups -------------------------------------------------------------------------------

    def _find(self, request: Request, params: dict[str, str]) -> tuple[WorkspaceState, DatasetState | None] | Response:
        ws = self.state.workspaces.get(params["g"].lower())
        if ws is None:
            return entity_not_found()
        if not ws.admits(request.caller, request.profile):
            return not_authorized()
        if "d" not in params:
            return ws, None
        ds = ws.datasets.get(params["d"].lower())
        if ds is None:
            return dataset_not_found(params["d"])
        return ws, ds

    def _context(self, suffix: str) -> str:
        return f"{self._api_root()}/$metadata#{suffix}"

    @staticmethod
    def _int_param(request: Request, name: str, default: int | None, minimum: int) -> int | Response | None:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            return pbi_error(400, "InvalidRequest", f"Invalid {name} value {raw!r}: expected an integer >= {minimum}.")
        return value

    # --- documents -----------------------------------------------------------------------------

    @staticmethod
    def group_json(ws: WorkspaceState) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": ws.id, "isReadOnly": False, "isOnDedicatedCapacity": ws.dedicated,
                               "type": "Workspace", "name": ws.name}
        if ws.dedicated:
            doc["capacityId"] = ws.capacity_id
            doc["defaultDatasetStorageFormat"] = "Small"
        return doc

    @staticmethod
    def dataset_json(ws: WorkspaceState, ds: DatasetState) -> dict[str, Any]:
        return {
            "id": ds.id, "name": ds.name, "webUrl": f"https://app.powerbi.com/groups/{ws.id}/datasets/{ds.id}",
            "addRowsAPIEnabled": False, "configuredBy": "owner@contoso.com", "isRefreshable": ds.refreshable,
            "isEffectiveIdentityRequired": False, "isEffectiveIdentityRolesRequired": False,
            "isOnPremGatewayRequired": ds.gateway_required, "targetStorageMode": "Abf" if ds.refreshable else "DirectQuery",
            "createdDate": history_time(ds.created), "createReportEmbedURL":
                f"https://app.powerbi.com/reportEmbed?config={ds.id}", "upstreamDatasets": [], "users": [],
        }

    def refresh_json(self, run: RefreshRun, now: dt.datetime) -> dict[str, Any]:
        doc: dict[str, Any] = {"requestId": run.request_id, "id": run.number, "refreshType": run.refresh_type,
                               "startTime": history_time(run.start), "status": run.status(now)}
        attempt: dict[str, Any] = {"attemptId": 1, "startTime": doc["startTime"], "type": "Data"}
        if not run.is_running(now):
            doc["endTime"] = attempt["endTime"] = history_time(run.end)
        error = run.error(now)
        if error is not None:
            doc["serviceExceptionJson"] = attempt["serviceExceptionJson"] = json.dumps(
                {"errorCode": error[0], "errorDescription": error[1]})
        if run.enhanced:
            doc["extendedStatus"] = run.extended_status(now)
        doc["refreshAttempts"] = [attempt]
        return doc

    def details_json(self, run: RefreshRun, now: dt.datetime) -> dict[str, Any]:
        ext = run.extended_status(now)
        running = run.is_running(now)
        status = "Unknown" if running else {"TimedOut": "Failed"}.get(ext, ext)
        kind = run.options.get("type", "Automatic")
        objects = run.options.get("objects") or [{"table": "Model", "partition": "Model"}]
        object_status = "InProgress" if running else {"TimedOut": "Failed"}.get(ext, ext)
        doc: dict[str, Any] = {
            "startTime": details_time(run.start), "type": kind,
            "commitMode": run.options.get("commitMode", "Transactional"), "status": status, "extendedStatus": ext,
            "currentRefreshType": kind, "numberOfAttempts": 0 if ext == "NotStarted" else 1,
            "objects": [{"table": o["table"], "partition": o.get("partition", o["table"]), "status": object_status}
                        for o in objects],
        }
        if ext != "NotStarted":
            attempt: dict[str, Any] = {"attemptId": 1, "startTime": details_time(run.start), "type": "Data"}
            if not running:
                doc["endTime"] = attempt["endTime"] = details_time(run.end)
            error = run.error(now)
            if error is not None:
                attempt["serviceExceptionJson"] = json.dumps({"errorCode": error[0], "errorDescription": error[1]})
                doc["messages"] = [{"code": "0xC112001C", "message": error[1], "type": "Error"}]
            doc["refreshAttempts"] = [attempt]
        return doc

    # --- routes --------------------------------------------------------------------------------

    def groups(self, request: Request, params: dict[str, str]) -> Response:
        try:
            predicate = compile_filter(request.query.get("$filter", ""))
        except FilterError as exc:
            return pbi_error(400, "InvalidRequest", str(exc))
        top = self._int_param(request, "$top", None, 1)
        skip = self._int_param(request, "$skip", 0, 0)
        for value in (top, skip):
            if isinstance(value, Response):
                return value
        assert not isinstance(top, Response)
        assert isinstance(skip, int)
        visible = (ws for ws in self.state.workspaces.values() if ws.admits(request.caller, request.profile))
        rows = [g for g in (self.group_json(ws) for ws in visible) if predicate(g)]
        page = rows[skip:] if top is None else rows[skip:skip + top]
        return json_response(200, {"@odata.context": self._context("groups"), "@odata.count": len(rows),
                                   "value": page})

    def datasets(self, request: Request, params: dict[str, str]) -> Response:
        found = self._find(request, params)
        if isinstance(found, Response):
            return found
        ws = found[0]
        return json_response(200, {"@odata.context": self._context(f"groups/{ws.id}/datasets"),
                                   "value": [self.dataset_json(ws, ds) for ds in ws.datasets.values()]})

    def dataset(self, request: Request, params: dict[str, str]) -> Response:
        found = self._find(request, params)
        if isinstance(found, Response):
            return found
        ws, ds = found
        assert ds is not None
        doc = {"@odata.context": self._context(f"groups/{ws.id}/datasets/$entity"), **self.dataset_json(ws, ds)}
        return json_response(200, doc)

    def tables(self, request: Request, params: dict[str, str]) -> Response:
        """The dataset's tables, for a dataset seeded with tables.

        Power BI lists tables only for push datasets, and refuses the call for other models (the emulator
        answers 400 ``InvalidRequest`` for a dataset seeded without tables; Power BI's exact wording is not
        documented). The emulator lists the seeded tables of any dataset, so ``pbi-taskflow doctor`` can
        check a config's table names against it.
        """
        found = self._find(request, params)
        if isinstance(found, Response):
            return found
        ws, ds = found
        assert ds is not None
        if ds.tables is None:
            return pbi_error(400, "InvalidRequest", f"Dataset {ds.id} is not a push dataset; its tables can only be "
                             "listed for push datasets.")
        return json_response(200, {"@odata.context": self._context(f"groups/{ws.id}/datasets/{ds.id}/tables"),
                                   "value": [{"name": name, "columns": []} for name in ds.tables]})

    def refresh_post(self, request: Request, params: dict[str, str], *, lost: bool = False) -> Response:
        """Trigger a refresh; ``lost`` answers 202 as usual but starts nothing (the service dropped it)."""
        found = self._find(request, params)
        if isinstance(found, Response):
            return found
        ws, ds = found
        assert ds is not None
        try:
            body = parse_refresh_body(request.body)
        except BodyError as exc:
            return pbi_error(400, "InvalidRequest", str(exc))
        if not ds.refreshable:
            return pbi_error(400, "InvalidRequest", f"Dataset {ds.id} is not refreshable (a DirectQuery or live "
                             "connection model has nothing to refresh).")
        if body.enhanced and not ws.dedicated:
            return pbi_error(400, "InvalidRequest", "Enhanced refresh is not supported for datasets in workspace "
                             f"'{ws.name}': it is on shared capacity. Enhanced refresh (any field other than "
                             "notifyOption) needs a Premium, Premium Per User or Embedded capacity; send a standard "
                             "refresh ({\"notifyOption\": \"NoNotification\"}) or move the workspace to a capacity.")
        missing = ds.unknown_object(body.options.get("objects") or [])
        if missing is not None:
            return unknown_refresh_object(ds, missing)
        now = self.state.clock.now()
        if ds.running(now) is not None:
            return pbi_error(400, "InvalidRequest",
                             "Invalid dataset refresh request. Another refresh request is already executing")
        if not ws.dedicated and self.state.quota_used(ds) >= SHARED_DAILY_LIMIT:
            return pbi_error(400, "InvalidRequest",
                             "Invalid dataset refresh request. Number of refresh requests in last 24 hours exceeded "
                             "limit")
        if lost:
            request_id = new_id()
        else:
            request_id = self.state.start_refresh(ds, refresh_type="ViaEnhancedApi" if body.enhanced else "ViaApi",
                                                  enhanced=body.enhanced, options=body.options,
                                                  timeout=body.timeout, caller=request.caller).request_id
        headers = {"RequestId": request_id, "Access-Control-Expose-Headers": "RequestId"}
        if body.enhanced:
            headers["x-ms-request-id"] = request_id
            headers["Location"] = f"{self._api_root()}/groups/{ws.id}/datasets/{ds.id}/refreshes/{request_id}"
            headers["Access-Control-Expose-Headers"] = "RequestId,Location,x-ms-request-id"
        return empty_response(202, headers)

    def history(self, request: Request, params: dict[str, str]) -> Response:
        found = self._find(request, params)
        if isinstance(found, Response):
            return found
        ds = found[1]
        assert ds is not None
        top = self._int_param(request, "$top", 60, 1)
        if isinstance(top, Response):
            return top
        now = self.state.clock.now()
        visible = [run for run in ds.history() if run.in_history(now)]
        entries = [self.refresh_json(run, now) for run in visible[:top]]
        return json_response(200, {"@odata.context": self._context("refreshes"), "value": entries})

    def _enhanced_run(self, request: Request, params: dict[str, str]) -> RefreshRun | Response:
        found = self._find(request, params)
        if isinstance(found, Response):
            return found
        ds = found[1]
        assert ds is not None
        run = ds.find_run(params["r"])
        if run is None or (request.method == "GET" and not run.has_details(self.state.clock.now())):
            return pbi_error(404, "ItemNotFound", f"Refresh {params['r']} is not found for dataset {ds.id}.")
        if not run.enhanced:
            return pbi_error(404, "ItemNotFound", f"Refresh {params['r']} of dataset {ds.id} was not started through "
                             "the enhanced refresh API; only enhanced refreshes can be read or cancelled by id. Read "
                             "the refresh history to follow a standard refresh.")
        return run

    def details(self, request: Request, params: dict[str, str]) -> Response:
        run = self._enhanced_run(request, params)
        if isinstance(run, Response):
            return run
        now = self.state.clock.now()
        return json_response(202 if run.is_running(now) else 200, self.details_json(run, now))

    def cancel(self, request: Request, params: dict[str, str]) -> Response:
        run = self._enhanced_run(request, params)
        if isinstance(run, Response):
            return run
        now = self.state.clock.now()
        if not run.is_running(now):
            return pbi_error(400, "InvalidRequest", f"Refresh {run.request_id} has already finished with status "
                             f"{run.extended_status(now)}; there is nothing to cancel.")
        self.state.cancel(run)
        return empty_response(200)
