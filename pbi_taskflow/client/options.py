"""Typed, validated refresh options: the body of a Power BI refresh request.

Validation happens on construction, so a bad option fails at DAG-parse time or when a task builds
it, always before any HTTP call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pbi_taskflow.client.durations import required_seconds
from pbi_taskflow.errors import ConfigurationError


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
        value = dt.timedelta(seconds=required_seconds(value, "Power BI timeout"))
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
