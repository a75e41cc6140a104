"""Turn what a ``@powerbi_refresh`` function returns into a list of :class:`~pbi_taskflow.client.models.Refresh`.

Pure: no I/O, no Airflow. Names stay names here; they are resolved to ids at run time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pbi_taskflow.client.models import Dataflow, Refresh, RefreshObject, RefreshOptions

#: What a task may select: a dataset's refresh or a dataflow's.
Selected = Refresh | Dataflow

ACCEPTED_SHAPES = (
    "None or an empty collection (nothing to refresh); "
    "a dataset name or id (str); "
    "a Refresh(dataset, workspace=None, tables=..., partitions=..., <options>); "
    "a Dataflow(dataflow, workspace=None); "
    "a mapping {dataset: None for the whole model, a table, a list of tables, "
    "or {table: a partition, a list of partitions or None}} (a Dataflow(...) key maps to None); "
    "or a list/tuple/set/generator mixing these"
)

_REPR_LIMIT = 200


def normalize(value: Any, *, default_workspace: str | None = None) -> list[Selected]:
    """Return the refreshes a task's return value asks for, duplicates merged, in first-seen order.

    Duplicates are the same dataset in the same workspace, compared case-insensitively. Their
    tables are merged; a whole-model request wins over a table list.

    :param value: what the decorated function returned.
    :param default_workspace: workspace (name or id) for items that do not name one.
    :raises TypeError: for any other shape, naming the accepted shapes and showing the value.
    """
    items: list[Selected] = []
    _collect(value, default_workspace, items, top=True)
    return merge(items)


def merge(refreshes: Iterable[Selected]) -> list[Selected]:
    """Merge refreshes of the same (workspace, dataset or dataflow) key; order of first appearance is kept.

    A dataflow selected twice is refreshed once (``MailOnFailure`` wins over ``NoNotification``).
    """
    merged: dict[tuple[str | None, str], Selected] = {}
    for refresh in refreshes:
        key = refresh.key
        if key in merged:
            merged[key] = _merge_pair(merged[key], refresh)
        else:
            merged[key] = refresh
    return list(merged.values())


def merge_options(first: RefreshOptions, second: RefreshOptions) -> RefreshOptions:
    """Combine the options of two requests for one dataset: the whole model wins over a table list."""
    combined = first.merged(second)
    if not first.objects or not second.objects:
        combined = dataclasses.replace(combined, objects=())
    return combined


def _merge_pair(first: Selected, second: Selected) -> Selected:
    if isinstance(first, Dataflow) or isinstance(second, Dataflow):
        notify = "MailOnFailure" if "MailOnFailure" in (_notify(first), _notify(second)) else "NoNotification"
        return Dataflow(_name(first), first.workspace, notify_option=notify)
    return Refresh(first.dataset, first.workspace, options=merge_options(first.options, second.options))


def _name(item: Selected) -> str:
    return item.dataflow if isinstance(item, Dataflow) else item.dataset


def _notify(item: Selected) -> str:
    return item.notify_option if isinstance(item, Dataflow) else "NoNotification"


def _collect(value: Any, workspace: str | None, out: list[Selected], *, top: bool = False) -> None:
    if value is None:
        if not top:
            _reject(value, "None inside a collection")
        return
    if isinstance(value, Dataflow):
        out.append(value if value.workspace or not workspace else
                   Dataflow(value.dataflow, workspace, notify_option=value.notify_option))
    elif isinstance(value, Refresh):
        out.append(value if value.workspace or not workspace else _with_workspace(value, workspace))
    elif isinstance(value, str):
        if not value.strip():
            _reject(value, "an empty dataset name")
        out.append(Refresh(value, workspace))
    elif isinstance(value, Mapping):
        for dataset, tables in value.items():
            if isinstance(dataset, Dataflow):
                if tables is not None:
                    _reject(value, f"dataflow {dataset.dataflow!r} maps to {_short(tables, 60)}; a dataflow has no "
                                   "tables to choose, map it to None")
                _collect(dataset, workspace, out)
                continue
            out.append(_from_mapping_item(dataset, tables, workspace, value))
    elif isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        _reject(value)
    else:
        for item in value:
            _collect(item, workspace, out)


def _with_workspace(refresh: Refresh, workspace: str) -> Refresh:
    return Refresh(refresh.dataset, workspace, options=refresh.options)


def _from_mapping_item(dataset: Any, tables: Any, workspace: str | None, whole: Any) -> Refresh:
    if not isinstance(dataset, str) or not dataset.strip():
        _reject(whole, f"mapping key {_short(dataset, 60)} is not a dataset name or id")
    if tables is None:
        return Refresh(dataset, workspace)
    if isinstance(tables, str):
        return Refresh(dataset, workspace, tables=[tables])
    if isinstance(tables, Mapping):
        objects = tuple(RefreshObject(t, p) for t, p in _partitions(dataset, tables, whole))
        return Refresh(dataset, workspace, options=RefreshOptions(objects=objects))
    if isinstance(tables, Iterable) and not isinstance(tables, (bytes, bytearray)):
        names = list(tables)
        if not all(isinstance(t, str) for t in names):
            _reject(whole, f"tables of {_short(dataset, 60)} must be table names (str)")
        return Refresh(dataset, workspace, tables=names)
    _reject(whole, f"value for {_short(dataset, 60)} must be a list of table names or None")
    raise AssertionError  # pragma: no cover - _reject always raises


def _partitions(dataset: str, tables: Mapping[Any, Any], whole: Any) -> list[tuple[str, str | None]]:
    """``{table: [partition, ...] or None}``: None (or an empty list) refreshes the whole table."""
    pairs: list[tuple[str, str | None]] = []
    for table, parts in tables.items():
        if not isinstance(table, str):
            _reject(whole, f"table {_short(table, 60)} of {_short(dataset, 60)} is not a table name")
        if parts is None or (isinstance(parts, (list, tuple, set)) and not parts):
            pairs.append((table, None))
            continue
        names = [parts] if isinstance(parts, str) else list(parts)
        if not all(isinstance(p, str) for p in names):
            _reject(whole, f"partitions of {_short(dataset, 60)}.{_short(table, 60)} must be partition names (str)")
        pairs.extend((table, p) for p in names)
    return pairs


def _short(value: Any, limit: int = _REPR_LIMIT) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject(value: Any, why: str | None = None) -> None:
    text = _short(value)
    reason = f" ({why})" if why else ""
    msg = (
        f"A @powerbi_refresh task returned {text} of type {type(value).__name__}{reason}. "
        f"Return one of: {ACCEPTED_SHAPES}."
    )
    raise TypeError(msg)


__all__ = ["ACCEPTED_SHAPES", "merge", "merge_options", "normalize"]
