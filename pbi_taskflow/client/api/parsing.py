"""Power BI answers as value types: workspaces, datasets, history entries, refresh states and results."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pbi_taskflow.client.api.calls import header
from pbi_taskflow.client.clouds import Cloud
from pbi_taskflow.client.models import (
    DataflowInfo,
    DataflowTransaction,
    Dataset,
    Datasource,
    Handle,
    HistoryEntry,
    RefreshOptions,
    RefreshResult,
    RefreshState,
    RefreshStatus,
    RefreshType,
    UpstreamDataflow,
    Workspace,
    parse_timestamp,
)


def iso_utc(value: str | None) -> str | None:
    """A Power BI timestamp (``…29.417Z``, or ``…29.439`` without a zone) as ISO 8601 UTC with an offset.

    Every start and end this package reports uses this one form, e.g. ``2026-11-27T20:07:41.448000+00:00``;
    an unreadable value is kept as Power BI sent it.
    """
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        return value
    if parsed is None:
        return None
    return parsed.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


#: History ``refreshType`` values of refreshes started through the REST API.
API_REFRESH_TYPES = frozenset({"viaapi", "viaenhancedapi", "reliableprocessing"})


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


def parse_dataflows(body: Any, workspace_id: str) -> list[DataflowInfo]:
    """Dataflows from a ``GET …/dataflows`` answer (``objectId`` is the id)."""
    return [DataflowInfo(id=str(v["objectId"]), name=str(v.get("name") or ""), workspace_id=workspace_id,
                     description=v.get("description") or None, configured_by=v.get("configuredBy"))
            for v in _values(body) if v.get("objectId")]


def parse_transactions(body: Any) -> list[DataflowTransaction]:
    """Dataflow refresh transactions, newest first as Power BI lists them (``Success`` becomes ``Completed``)."""
    return [DataflowTransaction(id=str(v["id"]), status=RefreshStatus.parse(v.get("status")), raw_status=v.get("status"),
                                refresh_type=v.get("refreshType"), start=iso_utc(v.get("startTime")),
                                end=iso_utc(v.get("endTime")))
            for v in _values(body) if v.get("id")]


#: what a transaction cancel reports, spelled as the swagger's enum
CANCEL_STATUSES = ("successfullyMarked", "alreadyConcluded", "notFound", "invalid")


def parse_cancel_status(body: Any) -> str | None:
    """The ``status`` of a transaction cancel in the swagger's spelling, whatever case Power BI used (``None``:
    no status; an unknown one is kept as sent)."""
    status = body.get("status") if isinstance(body, Mapping) else None
    if not status:
        return None
    return next((known for known in CANCEL_STATUSES if known.lower() == str(status).lower()), str(status))


def parse_dataset_dataflow_links(body: Any) -> list[UpstreamDataflow]:
    """``GET …/datasets/upstreamDataflows``: each dataset (``reader_id``) with a dataflow it reads and its workspace."""
    return [UpstreamDataflow(reader_id=str(v["datasetObjectId"]), dataflow_id=str(v["dataflowObjectId"]),
                             workspace_id=str(v.get("workspaceObjectId") or ""))
            for v in _values(body) if v.get("datasetObjectId") and v.get("dataflowObjectId")]


def parse_upstream_dataflows(body: Any, reader_id: str) -> list[UpstreamDataflow]:
    """``GET …/dataflows/{id}/upstreamDataflows``: the dataflows that dataflow ``reader_id`` reads."""
    return [UpstreamDataflow(reader_id=reader_id, dataflow_id=str(v["targetDataflowId"]),
                             workspace_id=str(v.get("groupId") or ""))
            for v in _values(body) if v.get("targetDataflowId")]


def parse_datasources(body: Any) -> list[Datasource]:
    """``GET …/datasets/{id}/datasources``: each data source, its connection details and gateway binding."""
    return [Datasource(datasource_type=str(v.get("datasourceType") or "Unknown"),
                       connection_details={str(k): str(x) for k, x in (v.get("connectionDetails") or {}).items()
                                           if x is not None},
                       gateway_id=v.get("gatewayId") or None, datasource_id=v.get("datasourceId") or None)
            for v in _values(body)]


def parse_gateway_datasources(body: Any) -> dict[str, Mapping[str, Any]]:
    """``Default.GetBoundGatewayDatasources``: the bound gateway data sources by lower-cased id."""
    return {str(v["id"]).lower(): v for v in _values(body) if v.get("id")}


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
        start=iso_utc(value.get("startTime")),
        end=iso_utc(value.get("endTime")),
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
        start=iso_utc(data.get("startTime")),
        end=iso_utc(data.get("endTime")),
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


def details_match(options: RefreshOptions, body: Any) -> bool:
    """Whether execution details describe a refresh with these enhanced options (type, tables, partitions).

    Fields the details do not report are not held against the match.
    """
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    wanted_type = options.type.value if isinstance(options.type, RefreshType) else options.type
    got_type = str(data.get("type") or "")
    if wanted_type and got_type and got_type.lower() != str(wanted_type).lower():
        return False
    seen = {
        (str(o.get("table") or "").lower(), str(o.get("partition") or "").lower())
        for o in data.get("objects") or []
        if isinstance(o, Mapping)
    }
    if not options.objects or not seen:
        return True
    for obj in options.objects:
        table, partition = obj.table.lower(), (obj.partition or "").lower()
        if not any(t == table and (not partition or p == partition) for t, p in seen):
            return False
    return True


def _portal_url(handle: Handle, cloud: Cloud | None) -> str | None:
    if cloud is None:
        return None
    if handle.kind == "dataflow":
        return cloud.dataflow_url(handle.workspace_id, handle.dataset_id)
    return cloud.dataset_url(handle.workspace_id, handle.dataset_id)


def result_from(handle: Handle, state: RefreshState, cloud: Cloud | None = None, **extra: Any) -> RefreshResult:
    """The :class:`RefreshResult` of ``handle`` in ``state`` (``extra`` sets ``reason``/``throttle_count``)."""
    start, end = parse_timestamp(state.start), parse_timestamp(state.end)
    duration = (end - start).total_seconds() if start and end else None
    if handle.note and "reason" not in extra:
        extra["reason"] = handle.note
    return RefreshResult(
        workspace_id=handle.workspace_id,
        workspace_name=handle.workspace_name,
        dataset_id=handle.dataset_id,
        dataset_name=handle.dataset_name,
        refresh_id=handle.refresh_id,
        kind=handle.kind,
        status=state.status,
        extended_status=state.extended_status,
        start=iso_utc(state.start),
        end=iso_utc(state.end),
        duration_s=duration,
        error_code=state.error_code,
        error_message=state.error_message,
        object_errors=state.object_errors,
        web_url=_portal_url(handle, cloud),
        **extra,
    )
