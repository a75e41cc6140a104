"""I6: a lineage-ordered task (``upstream='order'`` or ``'refresh'``) starts an item only after everything it reads
in the task's graph ended well in this run, and skips, without a request, an item whose upstream failed.

The graph is read from the emulator's lineage links (a dataset's ``upstream_dataflows``, a dataflow's
``upstream``): its items are the selection, plus, with ``upstream='refresh'``, every dataflow the selection reads
directly or not; its edges are the direct links between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pbi_taskflow.testing.invariants.model import (
    TOLERANCE,
    UPSTREAM_FAILED,
    Context,
    Item,
    TaskObservation,
    dataflow_item,
    dataset_item,
)
from pbi_taskflow.testing.invariants.results import failed_upstream

if TYPE_CHECKING:
    from pbi_taskflow.emulator import Emulator


def _reads(emulator: Emulator, item: Item) -> list[str]:
    """The ids (lower case) of the dataflows ``item`` reads directly."""
    if item.kind == "dataflow":
        links = emulator.dataflow(item.id).upstream
    else:
        links = emulator.state.dataset(item.id).upstream_dataflows
    return [dataflow_id.lower() for _, dataflow_id in links]


def task_items(emulator: Emulator, obs: TaskObservation) -> list[Item]:
    """The items the task refreshes: the selected datasets and dataflows, and with ``upstream='refresh'`` every
    dataflow they read (directly or not)."""
    items = [dataset_item(emulator, ref) for ref in obs.datasets]
    items += [dataflow_item(emulator, ref) for ref in obs.dataflows]
    if obs.upstream != "refresh":
        return items
    seen = {item.key for item in items}
    todo = list(items)
    while todo:
        for key in _reads(emulator, todo.pop()):
            if key not in seen:
                seen.add(key)
                added = dataflow_item(emulator, key)
                items.append(added)
                todo.append(added)
    return items


def edges(emulator: Emulator, items: list[Item]) -> list[tuple[Item, Item]]:
    """``(upstream, downstream)`` for each direct link between two of ``items``."""
    by_key = {item.key: item for item in items}
    return [(by_key[key], item) for item in items for key in _reads(emulator, item) if key in by_key]


def _ok_without_refresh(record: Mapping[str, Any] | None) -> bool:
    """Whether an upstream record ends well without a refresh in this run (skipped by a policy, not ruled out)."""
    if record is None or record.get("status") != "Skipped":
        return False
    reason = str(record.get("reason") or "")
    return not reason.startswith((UPSTREAM_FAILED, "timed out"))


def check_order(ctx: Context, records: Mapping[str, list[dict[str, Any]]]) -> None:
    """I6 over every link of the task's graph (nothing to check without ``upstream``)."""
    if ctx.obs.upstream == "ignore":
        return
    for upstream, item in edges(ctx.emu, ctx.items):
        up_records = records.get(upstream.key, [])
        up_record = up_records[0] if len(up_records) == 1 else None
        followed = str((up_record or {}).get("refresh_id") or "").lower()
        ends = sorted(r.end for r in upstream.runs if ctx.since_epoch(r.start) and r.final_status() == "Completed"
                      and (r.ours(ctx.obs.client_id) or r.request_id.lower() == followed))
        for post in ctx.posts(item):
            if _ok_without_refresh(up_record) or any(end <= post.time + TOLERANCE for end in ends):
                continue
            ctx.flag("I6", item, f"refresh request at {post.time:%H:%M:%S.%f} before {upstream.kind} "
                     f"{upstream.name!r}, which it reads, ended well in this run "
                     f"(its record: {(up_record or {}).get('status', 'none')})")
            break
        own = records.get(item.key, [])
        if failed_upstream(up_record) and len(own) == 1 and own[0].get("status") != "Skipped":
            ctx.flag("I6", item, f"reported {own[0].get('status')} although {upstream.kind} {upstream.name!r}, which "
                     f"it reads, ended {up_record.get('status') if up_record else '-'}: it must be Skipped")
