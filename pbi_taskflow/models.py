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


class RefreshType(str, enum.Enum):
    """Enhanced refresh ``type``."""

    FULL = "Full"
    CLEAR_VALUES = "ClearValues"
    CALCULATE = "Calculate"
    DATA_ONLY = "DataOnly"
    AUTOMATIC = "Automatic"
    DEFRAGMENT = "Defragment"


class CommitMode(str, enum.Enum):
    """Enhanced refresh ``commitMode``."""

    TRANSACTIONAL = "Transactional"
    PARTIAL_BATCH = "PartialBatch"


class NotifyOption(str, enum.Enum):
    """Standard refresh ``notifyOption``; service principals may only use ``NoNotification``."""

    NO_NOTIFICATION = "NoNotification"
    MAIL_ON_FAILURE = "MailOnFailure"
    MAIL_ON_COMPLETION = "MailOnCompletion"


def _enum(kind: type[enum.Enum], value: Any, field: str) -> Any:
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        folded = value.replace("_", "").replace(" ", "").lower()
        for member in kind:
            if str(member.value).lower() == folded:
                return member
    allowed = ", ".join(str(m.value) for m in kind)
    msg = f"Invalid {field} {value!r}: expected one of {allowed}."
    raise ConfigurationError(msg)


_TIMEOUT_RE = re.compile(r"^(\d{1,2}):([0-5]\d):([0-5]\d)$")
_MAX_TIMEOUT = dt.timedelta(hours=24)


def _timeout(value: Any) -> dt.timedelta | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = dt.timedelta(seconds=value)
    if isinstance(value, str):
        match = _TIMEOUT_RE.match(value.strip())
        if not match:
            msg = f"Invalid Power BI timeout {value!r}: expected 'hh:mm:ss' (for example '01:30:00'), seconds or a timedelta."
            raise ConfigurationError(msg)
        h, m, s = (int(g) for g in match.groups())
        value = dt.timedelta(hours=h, minutes=m, seconds=s)
    if not isinstance(value, dt.timedelta):
        msg = f"Invalid Power BI timeout {value!r}: expected 'hh:mm:ss', seconds or a timedelta."
        raise ConfigurationError(msg)
    if value <= dt.timedelta(0) or value > _MAX_TIMEOUT:
        msg = f"Invalid Power BI timeout {value}: it must be positive and at most 24:00:00 (Power BI's cap)."
        raise ConfigurationError(msg)
    return value


def _effective_date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            msg = f"Invalid effective_date {value!r}: expected an ISO date such as '2026-11-27'."
            raise ConfigurationError(msg) from None
        return value
    msg = f"Invalid effective_date {value!r}: expected a date, datetime or ISO date string."
    raise ConfigurationError(msg)


def _non_negative_int(value: Any, field: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"Invalid {field} {value!r}: expected a whole number >= {minimum}."
        raise ConfigurationError(msg)
    return value


@dataclasses.dataclass(frozen=True)
class RefreshObject:
    """One table, or one partition of a table, to refresh."""

    table: str
    partition: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.table, str) or not self.table.strip():
            msg = f"Invalid table name {self.table!r}: expected a non-empty string."
            raise ConfigurationError(msg)
        if self.partition is not None and (not isinstance(self.partition, str) or not self.partition.strip()):
            msg = f"Invalid partition name {self.partition!r} for table {self.table!r}: expected a non-empty string."
            raise ConfigurationError(msg)

    def to_json(self) -> dict[str, str]:
        body = {"table": self.table}
        if self.partition is not None:
            body["partition"] = self.partition
        return body


@dataclasses.dataclass(frozen=True)
class RefreshOptions:
    """The refresh request body, typed and validated on construction (before any HTTP call).

    Any field other than ``notify_option`` makes the refresh *enhanced* (Premium/Fabric capacity only).

    :param type: enhanced ``type`` (Full, ClearValues, Calculate, DataOnly, Automatic, Defragment).
    :param commit_mode: ``Transactional`` or ``PartialBatch``.
    :param max_parallelism: threads Power BI may use (>= 1).
    :param retry_count: Power BI-side retries (>= 0).
    :param objects: tables/partitions to refresh; empty means the whole model.
    :param apply_refresh_policy: apply the incremental refresh policy (must be false with PartialBatch).
    :param effective_date: the "today" of the incremental refresh policy.
    :param timeout: Power BI-side timeout per attempt ('hh:mm:ss', seconds or timedelta; at most 24 h).
    :param notify_option: standard refresh only; service principals must use ``NoNotification``.
    """

    type: RefreshType | str | None = None
    commit_mode: CommitMode | str | None = None
    max_parallelism: int | None = None
    retry_count: int | None = None
    objects: tuple[RefreshObject, ...] = ()
    apply_refresh_policy: bool | None = None
    effective_date: dt.date | str | None = None
    timeout: dt.timedelta | str | int | None = None
    notify_option: NotifyOption | str | None = None

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "type", _enum(RefreshType, self.type, "refresh type"))
        setattr_(self, "commit_mode", _enum(CommitMode, self.commit_mode, "commit mode"))
        setattr_(self, "notify_option", _enum(NotifyOption, self.notify_option, "notify option"))
        setattr_(self, "max_parallelism", _non_negative_int(self.max_parallelism, "max_parallelism", 1))
        setattr_(self, "retry_count", _non_negative_int(self.retry_count, "retry_count", 0))
        setattr_(self, "timeout", _timeout(self.timeout))
        setattr_(self, "effective_date", _effective_date(self.effective_date))
        setattr_(self, "objects", tuple(_objects(self.objects)))
        if self.apply_refresh_policy is not None and not isinstance(self.apply_refresh_policy, bool):
            msg = f"Invalid apply_refresh_policy {self.apply_refresh_policy!r}: expected True or False."
            raise ConfigurationError(msg)
        if self.commit_mode is CommitMode.PARTIAL_BATCH and self.apply_refresh_policy:
            msg = "apply_refresh_policy=True cannot be combined with commit_mode='PartialBatch'; set it to False."
            raise ConfigurationError(msg)
        if self.notify_option is not None and self.is_enhanced:
            msg = (
                "notify_option applies only to standard refreshes; it cannot be combined with enhanced options "
                "(type, commit_mode, max_parallelism, retry_count, objects, apply_refresh_policy, effective_date, timeout)."
            )
            raise ConfigurationError(msg)

    @property
    def is_enhanced(self) -> bool:
        """Whether any enhanced-refresh field is set."""
        return any(
            v not in (None, ())
            for v in (
                self.type,
                self.commit_mode,
                self.max_parallelism,
                self.retry_count,
                self.objects,
                self.apply_refresh_policy,
                self.effective_date,
                self.timeout,
            )
        )

    def to_body(self) -> dict[str, Any]:
        """The JSON body of the refresh POST."""
        if not self.is_enhanced:
            return {"notifyOption": _value(self.notify_option or NotifyOption.NO_NOTIFICATION)}
        body: dict[str, Any] = {}
        if self.type is not None:
            body["type"] = _value(self.type)
        if self.commit_mode is not None:
            body["commitMode"] = _value(self.commit_mode)
        if self.max_parallelism is not None:
            body["maxParallelism"] = self.max_parallelism
        if self.retry_count is not None:
            body["retryCount"] = self.retry_count
        if self.objects:
            body["objects"] = [o.to_json() for o in self.objects]
        apply_policy = self.apply_refresh_policy
        if apply_policy is None and self.commit_mode is CommitMode.PARTIAL_BATCH:
            apply_policy = False
        if apply_policy is not None:
            body["applyRefreshPolicy"] = apply_policy
        if self.effective_date is not None:
            body["effectiveDate"] = self.effective_date
        if self.timeout is not None:
            assert isinstance(self.timeout, dt.timedelta)
            total = int(self.timeout.total_seconds())
            body["timeout"] = f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
        return body

    def merged(self, other: RefreshOptions) -> RefreshOptions:
        """Fields set in ``self`` win over ``other`` (task defaults); objects are the union."""
        values = {}
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            values[field.name] = mine if mine not in (None, ()) else theirs
        values["objects"] = tuple(dict.fromkeys((*self.objects, *other.objects)))
        return RefreshOptions(**values)


def _value(member: enum.Enum | str) -> str:
    return str(member.value) if isinstance(member, enum.Enum) else member


def _objects(value: Any) -> Iterable[RefreshObject]:
    if value is None:
        return ()
    if isinstance(value, (str, RefreshObject)):
        value = [value]
    out = []
    for item in value:
        if isinstance(item, RefreshObject):
            out.append(item)
        elif isinstance(item, str):
            out.append(RefreshObject(item))
        elif isinstance(item, Mapping) and "table" in item:
            out.append(RefreshObject(item["table"], item.get("partition")))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(RefreshObject(item[0], item[1]))
        else:
            msg = f"Invalid refresh object {item!r}: expected a table name, (table, partition) or {{'table': ..., 'partition': ...}}."
            raise ConfigurationError(msg)
    return dict.fromkeys(out)


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
        if not isinstance(dataset, str) or not dataset.strip():
            msg = f"Invalid dataset {dataset!r}: expected a dataset name or id (a non-empty string)."
            raise ConfigurationError(msg)
        if workspace is not None and (not isinstance(workspace, str) or not workspace.strip()):
            msg = f"Invalid workspace {workspace!r} for dataset {dataset!r}: expected a workspace name or id."
            raise ConfigurationError(msg)
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


@dataclasses.dataclass(frozen=True)
class Target:
    """A :class:`Refresh` resolved to ids."""

    workspace_id: str
    workspace_name: str
    dataset_id: str
    dataset_name: str
    options: RefreshOptions = dataclasses.field(default_factory=RefreshOptions)
    on_dedicated_capacity: bool | None = None


@dataclasses.dataclass(frozen=True)
class Handle:
    """A started refresh. Plain values only, so it serializes into trigger kwargs and XComs.

    :param refresh_id: the id to poll: ``x-ms-request-id``/``Location`` for enhanced refreshes, the
        ``RequestId`` (matched to history ``requestId``) for standard ones.
    :param kind: ``enhanced`` or ``standard``.
    :param requested_at: ISO-8601 UTC time the POST was sent.
    :param attached: True when pbi_taskflow attached to a refresh it did not start (``if_running='attach'``).
    """

    workspace_id: str
    workspace_name: str
    dataset_id: str
    dataset_name: str
    refresh_id: str
    kind: str
    requested_at: str
    attached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
    """The outcome for one dataset: the one record every sink (XCom, logs, alerts, refresh log) reads."""

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

    @property
    def succeeded(self) -> bool:
        return self.status.is_success

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
