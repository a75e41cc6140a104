"""I1 and I2: which refreshes (dataflow transactions) the task started, and which it cancelled."""

from __future__ import annotations

import itertools
import urllib.parse
from collections.abc import Mapping
from typing import Any

from pbi_taskflow.testing.invariants.model import CANCEL, TOLERANCE, WAIT_TIMEOUT, Context, Item, Run


def check_starts(ctx: Context) -> None:
    """I1: at most one refresh started per item, a later one only after an earlier one ended without completing."""
    for item in ctx.items:
        runs = ctx.runs_ours(item)
        for earlier, later in itertools.pairwise(runs):
            if earlier.final_status() == "Completed" or earlier.end > later.start:
                ctx.flag("I1", item, f"{len(runs)} refreshes started in one logical run: {earlier.request_id} "
                         f"({earlier.final_status()}, {earlier.start:%H:%M:%S.%f}) then {later.request_id} "
                         f"({later.start:%H:%M:%S.%f})")
                break


def cancelled_id(path: str, endpoint: str) -> str:
    """The refresh (transaction) id a cancel request names: ``…/refreshes/{id}``, ``…/transactions/{id}/cancel``."""
    parts = path.rstrip("/").split("/")
    return urllib.parse.unquote(parts[-2] if endpoint == CANCEL["dataflow"] else parts[-1]).lower()


def check_cancels(ctx: Context, records: Mapping[str, dict[str, Any]]) -> None:
    """I2: a cancel only of a refresh the task started, only on a person's kill or the task's timeout, and at the
    timeout never of one that had ended."""
    by_id: dict[str, tuple[Item, Run]] = {r.request_id.lower(): (item, r) for item in ctx.items for r in item.runs}
    for request in ctx.requests:
        if request.endpoint not in CANCEL.values() or not ctx.since_epoch(request.time):
            continue
        refresh_id = cancelled_id(request.path, request.endpoint)
        found = by_id.get(refresh_id)
        if found is None:
            ctx.flag("I2", None, f"cancel of refresh {refresh_id}, which the emulator never started")
            continue
        item, run = found
        if not run.ours(ctx.obs.client_id):
            ctx.flag("I2", item, f"cancel of refresh {run.request_id} ({run.refresh_type}), which someone else "
                     "started")
            continue
        record = records.get(item.key)
        timed_out = record is not None and record.get("status") == "TimedOut" and \
            record.get("error_code") == WAIT_TIMEOUT
        allowed = (ctx.obs.killed and ctx.obs.cancel_on_kill) or (
            ctx.obs.timeout is not None and ctx.obs.cancel_on_timeout and timed_out)
        if not allowed:
            why = "a shutdown or crash" if not ctx.obs.killed else "a kill with cancel_on_kill=False"
            ctx.flag("I2", item, f"cancel of refresh {run.request_id} without a person's kill or the task's "
                     f"timeout (after {why})")
        # a kill may race a refresh's end unseen; at the timeout the task reads the status first
        if not ctx.obs.killed and request.time > run.planned_end + TOLERANCE and not run.cancelled_at:
            ctx.flag("I2", item, f"cancel of refresh {run.request_id} after it had ended "
                     f"({run.final_status()} at {run.planned_end:%H:%M:%S.%f})")
