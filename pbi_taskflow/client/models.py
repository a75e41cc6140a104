"""Plain value types shared by every layer: what to refresh, how, and what happened.

Nothing here does I/O or imports a heavy library; DAG files import these at parse time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pbi_taskflow.client.options import (
    CommitMode,
    NotifyOption,
    RefreshObject,
    RefreshOptions,
    RefreshType,
    _objects,
)
from pbi_taskflow.errors import ConfigurationError


class RefreshStatus(str, enum.Enum):
    """A refresh's state, as history ``status`` or details ``extendedStatus`` report it.

    ``Completed``, ``Failed``, ``Disabled``, ``Cancelled`` and ``TimedOut`` are terminal; ``Unknown``,
    ``NotStarted`` and ``InProgress`` mean still running. ``Skipped`` is pbi_taskflow's own: the
    dataset was selected but not refreshed because of a policy (``min_interval``, ``if_running``).
    """

    COMPLETED = "Completed"
    FAILED = "Failed"
    DISABLED = "Disabled"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"
    UNKNOWN = "Unknown"
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    SKIPPED = "Skipped"

    @classmethod
    def parse(cls, value: str | None) -> RefreshStatus:
        """Map a status string from any Power BI endpoint (any casing) to a member; unknown values are ``Unknown``."""
        if not value:
            return cls.UNKNOWN
        folded = value.replace("_", "").replace(" ", "").lower()
        for member in cls:
            if member.value.lower() == folded:
                return member
        if folded in ("succeeded", "success"):
            return cls.COMPLETED
        if folded in ("canceled",):
            return cls.CANCELLED
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self not in (RefreshStatus.UNKNOWN, RefreshStatus.NOT_STARTED, RefreshStatus.IN_PROGRESS)

    @property
    def is_success(self) -> bool:
        return self in (RefreshStatus.COMPLETED, RefreshStatus.SKIPPED)

    @property
    def is_failure(self) -> bool:
        return self.is_terminal and not self.is_success


_OPTION_FIELDS = (
    "type",
    "commit_mode",
    "max_parallelism",
    "retry_count",
    "apply_refresh_policy",
    "effective_date",
    "timeout",
    "notify_option",
)


def _check_names(noun: str, name: Any, workspace: Any) -> None:
    """Reject an empty or non-string item name or workspace, naming what was expected."""
    if not isinstance(name, str) or not name.strip():
        msg = f"Invalid {noun} {name!r}: expected a {noun} name or id (a non-empty string)."
        raise ConfigurationError(msg)
    if workspace is not None and (not isinstance(workspace, str) or not workspace.strip()):
        msg = f"Invalid workspace {workspace!r} for {noun} {name!r}: expected a workspace name or id."
        raise ConfigurationError(msg)


@dataclasses.dataclass(frozen=True, init=False)
class Refresh:
    """What a task asks to refresh: one dataset (by name or id), whole or chosen tables/partitions.

    :param dataset: dataset (semantic model) name or id.
    :param workspace: workspace name or id; defaults to the task's ``workspace``.
    :param tables: table names to refresh (enhanced refresh); empty means the whole model.
    :param partitions: ``{table: [partition, ...]}`` or ``[(table, partition), ...]``.
    :param options: further refresh options (``type``, ``commit_mode``, ``max_parallelism``,
        ``retry_count``, ``apply_refresh_policy``, ``effective_date``, ``timeout``, ``notify_option``).
    """

    dataset: str
    workspace: str | None
    options: RefreshOptions

    def __init__(
        self,
        dataset: str,
        workspace: str | None = None,
        *,
        tables: Iterable[str] | str | None = None,
        partitions: Mapping[str, Iterable[str]] | Iterable[tuple[str, str]] | None = None,
        options: RefreshOptions | None = None,
        **option_kwargs: Any,
    ) -> None:
        _check_names("dataset", dataset, workspace)
        unknown = set(option_kwargs) - set(_OPTION_FIELDS)
        if unknown:
            msg = f"Refresh() got unknown option(s) {sorted(unknown)}; accepted: tables, partitions, {', '.join(_OPTION_FIELDS)}."
            raise TypeError(msg)
        objs: list[Any] = []
        if isinstance(tables, str):
            tables = [tables]
        objs.extend(tables or ())
        if isinstance(partitions, Mapping):
            for table, parts in partitions.items():
                parts = [parts] if isinstance(parts, str) else parts
                objs.extend((table, p) for p in parts)
        elif partitions is not None:
            objs.extend(partitions)
        built = RefreshOptions(objects=tuple(_objects(objs)), **option_kwargs)
        if options is not None:
            built = built.merged(options)
        object.__setattr__(self, "dataset", dataset.strip())
        object.__setattr__(self, "workspace", workspace.strip() if workspace else None)
        object.__setattr__(self, "options", built)

    @property
    def key(self) -> tuple[str | None, str]:
        """Identity for merging duplicates: (workspace, dataset) case-folded."""
        return ((self.workspace or "").casefold() or None, self.dataset.casefold())


#: what a :class:`Target` refreshes: a semantic model (dataset) or a dataflow
ITEMS = ("dataset", "dataflow")
#: ``notifyOption`` values of a dataflow refresh (Power BI does not support ``MailOnCompletion`` for dataflows)
DATAFLOW_NOTIFY_OPTIONS = ("NoNotification", "MailOnFailure")


@dataclasses.dataclass(frozen=True, init=False)
class Dataflow:
    """What a task asks to refresh: one Power BI dataflow, by name or id, in the same return value as datasets.

    :param dataflow: dataflow name or id.
    :param workspace: workspace name or id; defaults to the task's ``workspace``.
    :param notify_option: ``NoNotification`` (default) or ``MailOnFailure`` (mail the dataflow's owner when the
        refresh fails).
    """

    dataflow: str
    workspace: str | None
    options: RefreshOptions

    def __init__(self, dataflow: str, workspace: str | None = None, *, notify_option: str = "NoNotification") -> None:
        _check_names("dataflow", dataflow, workspace)
        notify = getattr(notify_option, "value", notify_option)
        if notify not in DATAFLOW_NOTIFY_OPTIONS:
            msg = (f"Invalid notify_option {notify_option!r} for dataflow {dataflow!r}: expected "
                   f"{' or '.join(DATAFLOW_NOTIFY_OPTIONS)} (Power BI does not support MailOnCompletion for dataflows).")
            raise ConfigurationError(msg)
        object.__setattr__(self, "dataflow", dataflow.strip())
        object.__setattr__(self, "workspace", workspace.strip() if workspace else None)
        object.__setattr__(self, "options", RefreshOptions(notify_option=notify))

    @property
    def key(self) -> tuple[str | None, str]:
        """Identity for merging duplicates: (workspace, ``dataflow:`` name) case-folded (never a dataset's)."""
        return ((self.workspace or "").casefold() or None, "dataflow:" + self.dataflow.casefold())

    @property
    def notify_option(self) -> str:
        return str(getattr(self.options.notify_option, "value", self.options.notify_option))


@dataclasses.dataclass(frozen=True)
class Target:
    """A :class:`Refresh` or :class:`Dataflow` resolved to ids.

    For a dataflow (``item="dataflow"``) ``dataset_id`` and ``dataset_name`` hold the dataflow's id and name.
    """

    workspace_id: str
    workspace_name: str
    dataset_id: str
    dataset_name: str
    options: RefreshOptions = dataclasses.field(default_factory=RefreshOptions)
    on_dedicated_capacity: bool | None = None
    #: the service principal profile the dataset was resolved as (``None``: the service principal itself)
    profile_id: str | None = None
    #: ``dataset`` or ``dataflow`` (see :data:`ITEMS`)
    item: str = "dataset"

    @property
    def is_dataflow(self) -> bool:
        return self.item == "dataflow"

    @property
    def noun(self) -> str:
        """``dataset`` or ``dataflow``, for messages."""
        return "dataflow" if self.is_dataflow else "dataset"


@dataclasses.dataclass(frozen=True)
class Handle:
    """A started refresh. Plain values only, so it serializes into trigger kwargs and XComs.

    :param refresh_id: the id to poll: ``x-ms-request-id``/``Location`` for enhanced refreshes, the
        ``RequestId`` (matched to history ``requestId``) for standard ones.
    :param kind: ``enhanced`` or ``standard``; ``dataflow`` for a dataflow's refresh (a transaction: ``refresh_id``
        is its id, ``dataset_id``/``dataset_name`` the dataflow's).
    :param requested_at: ISO-8601 UTC time the POST was sent.
    :param attached: True when pbi_taskflow attached to a refresh it did not start (``if_running='attach'``), or
        follows one it cannot be sure it started; such a refresh is never cancelled.
    :param note: why this refresh is followed, when that is not plain (becomes the result's ``reason``).
    :param profile_id: the service principal profile it was started or found as (``None``: the service principal
        itself); part of its identity, since its ids mean something only to that profile's view of Power BI.
    """

    workspace_id: str
    workspace_name: str
    dataset_id: str
    dataset_name: str
    refresh_id: str
    kind: str
    requested_at: str
    attached: bool = False
    note: str | None = None
    profile_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def noun(self) -> str:
        """``dataset`` or ``dataflow``, for messages."""
        return "dataflow" if self.kind == "dataflow" else "dataset"

    @property
    def cancellable(self) -> bool:
        """Whether Power BI can cancel it through the API: enhanced refreshes and dataflow transactions can."""
        return self.kind in ("enhanced", "dataflow")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Handle:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class RefreshState:
    """One observation of a refresh's state from history or execution details."""

    status: RefreshStatus
    extended_status: str | None = None
    start: str | None = None
    end: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    object_errors: tuple[dict[str, Any], ...] = ()
    refresh_type: str | None = None


@dataclasses.dataclass(frozen=True)
class RefreshResult:
    """The outcome for one dataset or dataflow: the one record every sink (XCom, logs, alerts, refresh log) reads.

    A dataflow's result has ``kind="dataflow"``, its id and name in ``dataset_id`` and ``dataset_name``.
    ``depth`` is the item's depth in the lineage graph of a lineage-ordered refresh (0: reads nothing refreshed by
    the task), else ``None``.
    """

    workspace_id: str
    workspace_name: str
    dataset_id: str
    dataset_name: str
    refresh_id: str | None
    kind: str | None
    status: RefreshStatus
    extended_status: str | None = None
    start: str | None = None
    end: str | None = None
    duration_s: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    object_errors: tuple[dict[str, Any], ...] = ()
    web_url: str | None = None
    reason: str | None = None
    throttle_count: int = 0
    depth: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.status.is_success

    @property
    def noun(self) -> str:
        """``dataset`` or ``dataflow``, for messages."""
        return "dataflow" if self.kind == "dataflow" else "dataset"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        data["object_errors"] = [dict(e) for e in self.object_errors]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RefreshResult:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["status"] = RefreshStatus.parse(values.get("status"))
        values["object_errors"] = tuple(values.get("object_errors") or ())
        return cls(**values)


def parse_timestamp(value: str | None) -> dt.datetime | None:
    """Parse Power BI timestamps (with ``Z``, an offset, or none: assumed UTC)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Python < 3.11 accepts only 0, 3 or 6 fractional digits.
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$", text)
    if match:
        frac = (match.group(2) or "")[1:7].ljust(6, "0") if match.group(2) else ""
        text = match.group(1) + (f".{frac}" if frac else "") + match.group(3)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


@dataclasses.dataclass(frozen=True)
class Workspace:
    """A Power BI workspace (REST: group)."""

    id: str
    name: str
    is_on_dedicated_capacity: bool = False
    capacity_id: str | None = None
    is_read_only: bool = False


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A Power BI semantic model (REST: dataset)."""

    id: str
    name: str
    workspace_id: str
    is_refreshable: bool = True
    configured_by: str | None = None
    web_url: str | None = None


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One entry of a dataset's refresh history (``GET …/refreshes``)."""

    request_id: str
    refresh_type: str | None
    status: RefreshStatus
    extended_status: str | None = None
    start: str | None = None
    end: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def duration_s(self) -> float | None:
        start, end = parse_timestamp(self.start), parse_timestamp(self.end)
        if start is None or end is None:
            return None
        return (end - start).total_seconds()


@dataclasses.dataclass(frozen=True)
class DataflowInfo:
    """A Power BI dataflow as Power BI lists it (REST: ``objectId``); :class:`Dataflow` selects one to refresh."""

    id: str
    name: str
    workspace_id: str
    description: str | None = None
    configured_by: str | None = None


@dataclasses.dataclass(frozen=True)
class DataflowTransaction:
    """One refresh of a dataflow (``GET …/dataflows/{id}/transactions``), newest first as Power BI lists them.

    :param status: ``InProgress`` while it runs, then ``Completed`` (Power BI says ``Success``), ``Failed`` or
        ``Cancelled``; ``raw_status`` keeps Power BI's word.
    """

    id: str
    status: RefreshStatus
    raw_status: str | None = None
    refresh_type: str | None = None
    start: str | None = None
    end: str | None = None


@dataclasses.dataclass(frozen=True)
class UpstreamDataflow:
    """A dataflow that a dataset or a dataflow (``reader_id``) reads, and the workspace it lives in."""

    reader_id: str
    dataflow_id: str
    workspace_id: str


@dataclasses.dataclass(frozen=True)
class Datasource:
    """A data source of a dataset (``GET …/datasources``) and the gateway data source it is bound to, if any.

    :param datasource_type: ``Sql``, ``AnalysisServices``, ``File``, ``OData``, ``SharePointList``...
    :param connection_details: server, database, url, path... as Power BI lists them.
    :param gateway_id: the gateway (cluster) it is bound to; ``None`` when not bound.
    :param datasource_id: its id on that gateway; ``None`` when not bound.
    :param name: the gateway data source's name (``Default.GetBoundGatewayDatasources``), when known.
    :param credential_type: the gateway data source's credential type, when known.
    """

    datasource_type: str
    connection_details: Mapping[str, str] = dataclasses.field(default_factory=dict)
    gateway_id: str | None = None
    datasource_id: str | None = None
    name: str | None = None
    credential_type: str | None = None

    @property
    def bound(self) -> bool:
        return bool(self.gateway_id and self.datasource_id)

    @property
    def label(self) -> str:
        """How a person recognises it: its name, else its type and connection details (``Sql server/database``)."""
        if self.name:
            return self.name
        details = self.connection_details
        where = "/".join(str(details[k]) for k in ("server", "database") if details.get(k))
        where = where or next((str(details[k]) for k in ("url", "path", "account") if details.get(k)), "")
        return f"{self.datasource_type} {where}".strip()


__all__ = [
    "CommitMode",
    "DATAFLOW_NOTIFY_OPTIONS",
    "ITEMS",
    "Dataflow",
    "DataflowInfo",
    "DataflowTransaction",
    "Dataset",
    "Datasource",
    "Handle",
    "HistoryEntry",
    "NotifyOption",
    "Refresh",
    "RefreshObject",
    "RefreshOptions",
    "RefreshResult",
    "RefreshState",
    "RefreshStatus",
    "RefreshType",
    "Target",
    "UpstreamDataflow",
    "Workspace",
    "parse_timestamp",
]
