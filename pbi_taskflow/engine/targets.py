"""Targets and the results made without watching a refresh, as plain values.

Targets (dataset + refresh options) travel between tries in the task state store and to the
triggerer in event payloads, so they have a JSON-ready form here. A selection naming one dataset
twice (say by name and by id) merges into one target. Results for datasets skipped or failed before
any refresh is watched, and handles on refreshes someone else started, are made here too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pbi_taskflow.client.models import (
    Handle,
    HistoryEntry,
    RefreshObject,
    RefreshOptions,
    RefreshResult,
    RefreshStatus,
    Target,
    parse_timestamp,
)
from pbi_taskflow.errors import PowerBIError


def options_to_dict(options: RefreshOptions) -> dict[str, Any]:
    """JSON-ready form of :class:`RefreshOptions` that :func:`options_from_dict` reads back."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if value in (None, ()):
            continue
        if field.name == "objects":
            value = [[o.table, o.partition] for o in value]
        elif isinstance(value, dt.timedelta):
            value = value.total_seconds()
        else:
            value = getattr(value, "value", value)
        out[field.name] = value
    return out


def options_from_dict(data: Mapping[str, Any]) -> RefreshOptions:
    values = dict(data)
    values["objects"] = tuple(RefreshObject(t, p) for t, p in values.get("objects", ()))
    return RefreshOptions(**values)


def target_to_dict(target: Target) -> dict[str, Any]:
    data = dataclasses.asdict(target)
    data["options"] = options_to_dict(target.options)
    return data


def target_from_dict(data: Mapping[str, Any]) -> Target:
    """The :class:`Target` :func:`target_to_dict` wrote (a record from before dataflows is a dataset's)."""
    values = dict(data)
    values["options"] = options_from_dict(values.get("options") or {})
    return Target(**values)


def merge_targets(targets: Iterable[Target]) -> list[Target]:
    """One target per (workspace id, dataset id): a name and its id given separately merge here."""
    from pbi_taskflow.engine.selection import merge_options

    merged: dict[tuple[str, str], Target] = {}
    for target in targets:
        key = (target.workspace_id.lower(), target.dataset_id.lower())
        if key in merged:
            first = merged[key]
            merged[key] = dataclasses.replace(first, options=merge_options(first.options, target.options))
        else:
            merged[key] = target
    return list(merged.values())


def target_key(data: Mapping[str, Any]) -> tuple[str, str]:
    return (str(data["workspace_id"]).lower(), str(data["dataset_id"]).lower())


def attached_handle(target: Target, entry: HistoryEntry) -> Handle:
    """A handle on a refresh this task did not start (watched through the history)."""
    start = parse_timestamp(entry.start) or dt.datetime.now(dt.timezone.utc)
    return Handle(
        workspace_id=target.workspace_id,
        workspace_name=target.workspace_name,
        dataset_id=target.dataset_id,
        dataset_name=target.dataset_name,
        refresh_id=entry.request_id,
        kind="dataflow" if target.is_dataflow else "standard",
        requested_at=start.isoformat(),
        attached=True,
        profile_id=target.profile_id,
    )


def skipped(target: Target, reason: str) -> RefreshResult:
    return RefreshResult(
        workspace_id=target.workspace_id,
        workspace_name=target.workspace_name,
        dataset_id=target.dataset_id,
        dataset_name=target.dataset_name,
        refresh_id=None,
        kind="dataflow" if target.is_dataflow else None,
        status=RefreshStatus.SKIPPED,
        reason=reason,
    )


def failed(target: Target | Handle, exc: PowerBIError, *, refresh_id: str | None = None) -> RefreshResult:
    """A failed result carrying Power BI's own error text."""
    return RefreshResult(
        workspace_id=target.workspace_id,
        workspace_name=target.workspace_name,
        dataset_id=target.dataset_id,
        dataset_name=target.dataset_name,
        refresh_id=refresh_id or getattr(target, "refresh_id", None),
        kind=getattr(target, "kind", "dataflow" if getattr(target, "is_dataflow", False) else None),
        status=RefreshStatus.FAILED,
        error_code=exc.code or type(exc).__name__,
        error_message=exc.message,
    )


__all__ = [
    "attached_handle",
    "failed",
    "merge_targets",
    "options_from_dict",
    "options_to_dict",
    "skipped",
    "target_from_dict",
    "target_key",
    "target_to_dict",
]
