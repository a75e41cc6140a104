"""The Power BI REST API written once: request building, error decoding and response parsing.

Both :class:`~pbi_taskflow.client.PowerBIClient` (requests) and
:class:`~pbi_taskflow.aclient.AsyncPowerBIClient` (httpx) execute the :class:`ApiRequest` objects
built here and hand the answers back to the parsers here. Nothing in this module does I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from pbi_taskflow.clouds import Cloud
from pbi_taskflow.errors import (
    EnhancedRefreshNotSupportedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PowerBIError,
    PowerBIHTTPError,
    RefreshAlreadyRunningError,
    RefreshQuotaExceededError,
    ServerError,
    ThrottledError,
    TokenExpiredError,
    TransportError,
)
from pbi_taskflow.models import (
    Dataset,
    Handle,
    HistoryEntry,
    RefreshOptions,
    RefreshResult,
    RefreshState,
    RefreshStatus,
    Workspace,
    parse_timestamp,
)

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

#: History ``refreshType`` values of refreshes started through the REST API.
API_REFRESH_TYPES = frozenset({"viaapi", "viaenhancedapi", "reliableprocessing"})

_PERMISSION_ADVICE = (
    "Check that the Power BI tenant setting 'Service principals can call Fabric public APIs' (formerly 'Allow "
    "service principals to use Power BI APIs') covers this app, and that its service principal is a Member or "
    "Admin of the workspace."
)


def is_guid(value: str) -> bool:
    """Whether ``value`` looks like a Power BI id (a GUID)."""
    return bool(GUID_RE.match(value.strip()))


@dataclasses.dataclass(frozen=True)
class ApiRequest:
    """One Power BI REST call, independent of the HTTP library that sends it.

    :param method: HTTP method.
    :param path: path below the API root (``/groups/…``).
    :param endpoint: short endpoint name used in logs and by the emulator (``history``, ``refresh_post``…).
    :param operation: what the call does, for error messages (``trigger refresh``).
    :param params: query parameters.
    :param json: JSON body.
    :param idempotent: whether a transient failure may be retried by simply re-sending.
    :param workspace: workspace concerned, for error messages.
    :param dataset: dataset concerned, for error messages.
    """

    method: str
    path: str
    endpoint: str
    operation: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    idempotent: bool = True
    workspace: str | None = None
    dataset: str | None = None


@dataclasses.dataclass(frozen=True)
class ApiResponse:
    """A Power BI answer: status, headers (case-insensitive lookup via :func:`header`) and decoded body."""

    status: int
    headers: Mapping[str, str]
    body: Any


def _seg(value: str) -> str:
    return quote(value.strip(), safe="")


def odata_quote(value: str) -> str:
    """Quote a string literal for an OData ``$filter`` (``'`` doubled)."""
    return "'" + value.replace("'", "''") + "'"


def list_groups(name: str | None = None, top: int | None = None) -> ApiRequest:
    """``GET /groups`` with an exact ``name eq`` filter and/or ``$top``."""
    params: dict[str, str] = {}
    if name is not None:
        params["$filter"] = f"name eq {odata_quote(name)}"
    if top is not None:
        params["$top"] = str(int(top))
    return ApiRequest("GET", "/groups", "groups", "list workspaces", params=params or None, workspace=name)


def list_datasets(workspace_id: str, *, workspace: str | None = None) -> ApiRequest:
    """``GET /groups/{id}/datasets``."""
    return ApiRequest(
        "GET", f"/groups/{_seg(workspace_id)}/datasets", "datasets", "list datasets", workspace=workspace or workspace_id
    )


def get_dataset(workspace_id: str, dataset_id: str, *, workspace: str | None = None) -> ApiRequest:
    """``GET /groups/{id}/datasets/{id}``."""
    return ApiRequest(
        "GET",
        f"/groups/{_seg(workspace_id)}/datasets/{_seg(dataset_id)}",
        "dataset",
        "get dataset",
        workspace=workspace or workspace_id,
        dataset=dataset_id,
    )


def _refreshes(workspace_id: str, dataset_id: str) -> str:
    return f"/groups/{_seg(workspace_id)}/datasets/{_seg(dataset_id)}/refreshes"


def trigger_refresh(
    workspace_id: str,
    dataset_id: str,
    options: RefreshOptions,
    *,
    workspace: str | None = None,
    dataset: str | None = None,
) -> ApiRequest:
    """``POST …/refreshes`` with the standard or enhanced body. Never blindly retried."""
    return ApiRequest(
        "POST",
        _refreshes(workspace_id, dataset_id),
        "refresh_post",
        "trigger refresh",
        json=options.to_body(),
        idempotent=False,
        workspace=workspace or workspace_id,
        dataset=dataset or dataset_id,
    )


def refresh_history(
    workspace_id: str, dataset_id: str, top: int | None = None, *, workspace: str | None = None, dataset: str | None = None
) -> ApiRequest:
    """``GET …/refreshes?$top=N``."""
    return ApiRequest(
        "GET",
        _refreshes(workspace_id, dataset_id),
        "history",
        "read refresh history",
        params={"$top": str(int(top))} if top else None,
        workspace=workspace or workspace_id,
        dataset=dataset or dataset_id,
    )


def refresh_details(handle: Handle) -> ApiRequest:
    """``GET …/refreshes/{id}`` (enhanced refreshes only)."""
    return ApiRequest(
        "GET",
        f"{_refreshes(handle.workspace_id, handle.dataset_id)}/{_seg(handle.refresh_id)}",
        "details",
        "read refresh details",
        workspace=handle.workspace_name,
        dataset=handle.dataset_name,
    )


def cancel_refresh(handle: Handle) -> ApiRequest:
    """``DELETE …/refreshes/{id}`` (enhanced refreshes only). Repeating it is harmless."""
    return ApiRequest(
        "DELETE",
        f"{_refreshes(handle.workspace_id, handle.dataset_id)}/{_seg(handle.refresh_id)}",
        "cancel",
        "cancel refresh",
        workspace=handle.workspace_name,
        dataset=handle.dataset_name,
    )


# --- headers and bodies ------------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts too."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def request_id(headers: Mapping[str, str]) -> str | None:
    """The Power BI request id of an answer (``RequestId``, else ``x-ms-request-id``)."""
    return header(headers, "RequestId") or header(headers, "x-ms-request-id")


def decode_body(raw: bytes | str | None) -> Any:
    """Decode a JSON body; a non-JSON body comes back as text, an empty one as ``None``."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def error_details(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from any Power BI error body shape."""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            code = err.get("code")
            message = err.get("message")
            pbi = err.get("pbi.error")
            if isinstance(pbi, Mapping) and not message:
                message = pbi.get("code")
            return (str(code) if code else None, str(message) if message else None)
        message = body.get("message") or body.get("Message")
        return (None, str(message) if message else None)
    if isinstance(body, str) and body.strip():
        return (None, body.strip()[:500])
    return (None, None)


def raise_for_response(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    *,
    workspace: str | None = None,
    dataset: str | None = None,
    operation: str | None = None,
) -> None:
    """Raise the matching :class:`~pbi_taskflow.errors.PowerBIHTTPError` for an error answer.

    Does nothing for 1xx-3xx. The message names the operation, workspace and dataset; status, Power
    BI code and request id are attached (and printed by ``str()``).
    """
    if status < 400:
        return
    code, message = error_details(body)
    rid = request_id(headers)
    text = (message or "").lower()
    where = _where(workspace, dataset)
    head = f"Power BI {operation or 'request'} failed{where}: {message or 'no error message'}."
    kw: dict[str, Any] = {"status": status, "code": code, "request_id": rid, "workspace": workspace, "dataset": dataset}
    if "already executing" in text or "already running" in text:
        raise RefreshAlreadyRunningError(
            f"{head} Another refresh of this dataset is running; wait for it to finish (or let pbi_taskflow wait "
            "or attach to it with if_running).",
            **kw,
        )
    if "24 hours exceeded" in text or ("exceeded limit" in text and "refresh" in text):
        raise RefreshQuotaExceededError(
            f"{head} The dataset used up its daily refresh quota (8 a day on shared capacity, scheduled refreshes "
            "included); try again tomorrow or move the workspace to a Premium/Fabric capacity.",
            **kw,
        )
    if status == 400 and _mentions_enhanced(code, text):
        raise EnhancedRefreshNotSupportedError(
            f"{head} Enhanced refresh options (tables, partitions, type, commit mode…) need a Premium, PPU, "
            "Embedded or Fabric capacity; drop them for this dataset or move its workspace to such a capacity.",
            **kw,
        )
    if status == 403 and (code or "").lower() == "tokenexpired":
        raise TokenExpiredError(f"{head} The access token expired; a new one is needed.", **kw)
    if status in (401, 403):
        raise PermissionDeniedError(f"{head} The service principal is not allowed to do this. {_PERMISSION_ADVICE}", **kw)
    if status == 404:
        raise NotFoundError(
            f"{head} Check the id, and that the service principal is a member of the workspace (Power BI answers "
            "404 for items it cannot see).",
            **kw,
        )
    if status == 429:
        retry_after = parse_retry_after(header(headers, "Retry-After"))
        raise ThrottledError(f"{head} Power BI is throttling requests.", retry_after=retry_after, **kw)
    if status >= 500:
        raise ServerError(f"{head} Power BI had an internal error; this is usually transient.", **kw)
    if status in (400, 409):
        raise InvalidRequestError(f"{head} Power BI rejected the request.", **kw)
    raise PowerBIHTTPError(head, **kw)


def _mentions_enhanced(code: str | None, text: str) -> bool:
    if code and "enhanced" in code.lower():
        return True
    return "enhanced" in text or "premium" in text or "shared capacity" in text


def _where(workspace: str | None, dataset: str | None) -> str:
    parts = []
    if dataset:
        parts.append(f"dataset {dataset!r}")
    if workspace:
        parts.append(f"workspace {workspace!r}")
    return (" for " + " in ".join(parts)) if parts else ""


def is_tls_verification_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (from requests, httpx or ssl) is a failed certificate verification."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if "CERTIFICATE_VERIFY_FAILED" in str(current) or type(current).__name__ == "SSLCertVerificationError":
            return True
        current = current.__cause__ or current.__context__
    return False


def tls_error(what: str, exc: BaseException, **kwargs: Any) -> TransportError:
    """A TLS verification failure: not transient, and the fix is a CA bundle."""
    error = TransportError(
        f"TLS certificate verification failed for {what} ({type(exc).__name__}). If the server uses a private or "
        "test CA, set the connection's ca_bundle to a PEM file that trusts it.",
        **kwargs,
    )
    error.__dict__["transient"] = False
    return error


def transport_error(request: ApiRequest, what: str, exc: BaseException) -> TransportError:
    """The error for a call that got no answer (``what``: "timed out", "connection failed")."""
    where = _where(request.workspace, request.dataset)
    if is_tls_verification_failure(exc):
        return tls_error(f"Power BI {request.operation}{where}", exc, workspace=request.workspace, dataset=request.dataset)
    return TransportError(
        f"Power BI {request.operation}{where} {what} before an answer arrived ({type(exc).__name__}); usually transient.",
        workspace=request.workspace,
        dataset=request.dataset,
    )


def check(response: ApiResponse, request: ApiRequest) -> ApiResponse:
    """Raise for an error answer to ``request``; return the response otherwise."""
    raise_for_response(
        response.status,
        response.headers,
        response.body,
        workspace=request.workspace,
        dataset=request.dataset,
        operation=request.operation,
    )
    return response


# --- parsing ----------------------------------------------------------------------------------


def _values(body: Any) -> list[Mapping[str, Any]]:
    if isinstance(body, Mapping) and isinstance(body.get("value"), list):
        return [v for v in body["value"] if isinstance(v, Mapping)]
    return []


def parse_workspaces(body: Any) -> list[Workspace]:
    """Workspaces from a ``GET /groups`` answer."""
    return [
        Workspace(
            id=str(v["id"]),
            name=str(v.get("name") or ""),
            is_on_dedicated_capacity=bool(v.get("isOnDedicatedCapacity", False)),
            capacity_id=v.get("capacityId"),
            is_read_only=bool(v.get("isReadOnly", False)),
        )
        for v in _values(body)
        if v.get("id")
    ]


def parse_dataset(value: Mapping[str, Any], workspace_id: str) -> Dataset:
    """One dataset object."""
    return Dataset(
        id=str(value["id"]),
        name=str(value.get("name") or ""),
        workspace_id=workspace_id,
        is_refreshable=bool(value.get("isRefreshable", True)),
        configured_by=value.get("configuredBy"),
        web_url=value.get("webUrl"),
    )


def parse_datasets(body: Any, workspace_id: str) -> list[Dataset]:
    """Datasets from a ``GET …/datasets`` answer."""
    return [parse_dataset(v, workspace_id) for v in _values(body) if v.get("id")]


def parse_service_exception(value: Any) -> tuple[str | None, str | None]:
    """``(errorCode, errorDescription)`` from ``serviceExceptionJson`` (a JSON string, parsed here)."""
    if value is None or value == "":
        return (None, None)
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            return (None, value)
    if isinstance(data, Mapping):
        code = data.get("errorCode") or data.get("code")
        message = data.get("errorDescription") or data.get("message") or data.get("description")
        return (str(code) if code else None, str(message) if message else None)
    return (None, str(value))


def combine_status(status: str | None, extended: str | None) -> RefreshStatus:
    """One :class:`RefreshStatus` from ``status`` and ``extendedStatus`` (the more precise wins)."""
    main = RefreshStatus.parse(status)
    ext = RefreshStatus.parse(extended) if extended else None
    if ext is not None and ext.is_terminal:
        return ext
    if main.is_terminal:
        return main
    if ext is not None and ext is not RefreshStatus.UNKNOWN:
        return ext
    return main


def _attempt_error(value: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The error of the last refresh attempt that has one."""
    for attempt in reversed(value.get("refreshAttempts") or []):
        if isinstance(attempt, Mapping) and attempt.get("serviceExceptionJson"):
            return parse_service_exception(attempt["serviceExceptionJson"])
    return (None, None)


def parse_history_entry(value: Mapping[str, Any]) -> HistoryEntry:
    """One refresh-history entry."""
    code, message = parse_service_exception(value.get("serviceExceptionJson"))
    if code is None and message is None:
        code, message = _attempt_error(value)
    return HistoryEntry(
        request_id=str(value.get("requestId") or value.get("id") or ""),
        refresh_type=value.get("refreshType"),
        status=combine_status(value.get("status"), value.get("extendedStatus")),
        extended_status=value.get("extendedStatus"),
        start=value.get("startTime"),
        end=value.get("endTime"),
        error_code=code,
        error_message=message,
    )


def parse_history(body: Any) -> list[HistoryEntry]:
    """Refresh history, newest first as Power BI returns it."""
    return [parse_history_entry(v) for v in _values(body)]


def state_from_entry(entry: HistoryEntry) -> RefreshState:
    """A :class:`RefreshState` from a history entry."""
    return RefreshState(
        status=entry.status,
        extended_status=entry.extended_status,
        start=entry.start,
        end=entry.end,
        error_code=entry.error_code,
        error_message=entry.error_message,
        refresh_type=entry.refresh_type,
    )


def parse_details(body: Any) -> RefreshState:
    """A :class:`RefreshState` from ``GET …/refreshes/{id}``, keeping per-object errors and messages."""
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    status = combine_status(data.get("status"), data.get("extendedStatus"))
    problems: list[dict[str, Any]] = []
    for obj in data.get("objects") or []:
        if isinstance(obj, Mapping) and RefreshStatus.parse(obj.get("status")).is_failure:
            problems.append({k: obj.get(k) for k in ("table", "partition", "status") if obj.get(k) is not None})
    for msg in data.get("messages") or []:
        if isinstance(msg, Mapping):
            problems.append({k: msg.get(k) for k in ("code", "message", "type") if msg.get(k) is not None})
    code, message = _attempt_error(data)
    if code is None and message is None:
        code, message = parse_service_exception(data.get("serviceExceptionJson"))
    if message is None and status.is_failure:
        errors = [p for p in problems if p.get("message") and str(p.get("type", "Error")).lower() == "error"]
        if errors:
            code, message = errors[0].get("code"), errors[0]["message"]
    return RefreshState(
        status=status,
        extended_status=data.get("extendedStatus"),
        start=data.get("startTime"),
        end=data.get("endTime"),
        error_code=code,
        error_message=message,
        object_errors=tuple(problems),
        refresh_type=data.get("type") or data.get("currentRefreshType"),
    )


def refresh_id_from_trigger(headers: Mapping[str, str], *, enhanced: bool) -> str | None:
    """The id to poll after a refresh POST.

    Enhanced: the last segment of ``Location``, else ``x-ms-request-id``. Standard: ``RequestId``
    (matched later to history ``requestId``).
    """
    if enhanced:
        location = header(headers, "Location")
        if location:
            last = location.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
            if last and last.lower() != "refreshes":
                return last
        return header(headers, "x-ms-request-id") or header(headers, "RequestId")
    return header(headers, "RequestId") or header(headers, "x-ms-request-id")


def find_entry(entries: Iterable[HistoryEntry], refresh_id: str) -> HistoryEntry | None:
    """The history entry whose ``requestId`` equals ``refresh_id`` (case-insensitively)."""
    wanted = refresh_id.strip().lower()
    for entry in entries:
        if entry.request_id.strip().lower() == wanted:
            return entry
    return None


def find_started_refresh(
    entries: Iterable[HistoryEntry], *, enhanced: bool, since: dt.datetime
) -> HistoryEntry | None:
    """The API refresh a POST that failed ambiguously may have started, if history shows one.

    A candidate is an API-started entry (``ViaEnhancedApi`` for enhanced, ``ViaApi`` for standard
    refreshes) that is still running or started at or after ``since``.
    """
    for entry in entries:
        kind = (entry.refresh_type or "").replace(" ", "").lower()
        if kind not in API_REFRESH_TYPES:
            continue
        if enhanced != (kind != "viaapi"):
            continue
        started = parse_timestamp(entry.start)
        if not entry.status.is_terminal or (started is not None and started >= since):
            return entry
    return None


def result_from(handle: Handle, state: RefreshState, cloud: Cloud | None = None, **extra: Any) -> RefreshResult:
    """The :class:`RefreshResult` of ``handle`` in ``state`` (``extra`` sets ``reason``/``throttle_count``)."""
    start, end = parse_timestamp(state.start), parse_timestamp(state.end)
    duration = (end - start).total_seconds() if start and end else None
    return RefreshResult(
        workspace_id=handle.workspace_id,
        workspace_name=handle.workspace_name,
        dataset_id=handle.dataset_id,
        dataset_name=handle.dataset_name,
        refresh_id=handle.refresh_id,
        kind=handle.kind,
        status=state.status,
        extended_status=state.extended_status,
        start=state.start,
        end=state.end,
        duration_s=duration,
        error_code=state.error_code,
        error_message=state.error_message,
        object_errors=state.object_errors,
        web_url=cloud.dataset_url(handle.workspace_id, handle.dataset_id) if cloud else None,
        **extra,
    )


def not_visible_error(handle: Handle, waited_s: float) -> PowerBIError:
    """The error for a standard refresh that never showed up in history."""
    return NotFoundError(
        f"Refresh {handle.refresh_id} of dataset {handle.dataset_name!r} in workspace {handle.workspace_name!r} "
        f"did not appear in the refresh history within {waited_s:.0f} s. Power BI may have dropped the request "
        "(it drops refresh requests sent in quick succession); trigger the refresh again.",
        request_id=handle.refresh_id,
        workspace=handle.workspace_name,
        dataset=handle.dataset_name,
    )
