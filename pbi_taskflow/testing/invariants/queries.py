"""Helpers for drills and reports: refreshes started and cancels sent by an app, the texts I5 reads."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pbi_taskflow.testing.invariants.model import TOLERANCE, Violation

if TYPE_CHECKING:
    from pbi_taskflow.emulator import Emulator
    from pbi_taskflow.emulator.requestlog import RequestRecord


def refreshes_started(emulator: Emulator, datasets: Iterable[str], client_id: str,
                      since: dt.datetime | None = None) -> dict[str, int]:
    """How many refreshes ``client_id`` started on each dataset (name or id, as given) since ``since``.

    Counts the refreshes Power BI started, not the requests: a throttled refresh request sent again is one.
    For a deployment where many tasks share one app, give each task's datasets and the window of the run.
    """
    floor = (since or dt.datetime.min.replace(tzinfo=dt.timezone.utc)) - TOLERANCE
    out: dict[str, int] = {}
    for ref in datasets:
        ds = emulator.state.dataset(ref)
        out[ref] = sum(1 for r in ds.runs if (r.caller or "").lower() == client_id.lower() and r.start >= floor)
    return out


def cancel_requests(emulator: Emulator, datasets: Iterable[str], client_id: str,
                    since: dt.datetime | None = None) -> list[RequestRecord]:
    """The cancel (DELETE) requests ``client_id`` sent about refreshes of ``datasets`` since ``since``."""
    floor = (since or dt.datetime.min.replace(tzinfo=dt.timezone.utc)) - TOLERANCE
    ids = {emulator.state.dataset(ref).id.lower() for ref in datasets}
    return [r for r in emulator.requests if r.endpoint == "cancel" and r.time >= floor
            and (r.client_id or "").lower() == client_id.lower()
            and any(f"/datasets/{i}/" in r.path.lower() for i in ids)]


def texts_of(log_text: str, xcoms: Iterable[Any], alerts: Iterable[str] = ()) -> list[str]:
    """The texts I5 checks: the log, every XCom value (as JSON) and the alert texts."""
    out = [log_text, *alerts]
    for value in xcoms:
        try:
            out.append(json.dumps(value, default=str))
        except (TypeError, ValueError):
            out.append(repr(value))
    return out


def format_violations(violations: Iterable[Violation]) -> str:
    return "\n".join(f"  {v}" for v in violations)
