"""Name-or-id matching for workspaces and datasets, shared by both clients (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TypeVar

from pbi_taskflow.api import is_guid
from pbi_taskflow.errors import AmbiguousNameError, UnknownNameError
from pbi_taskflow.models import Dataset, Workspace

T = TypeVar("T", Workspace, Dataset)


def pick(items: Sequence[T], wanted: str, *, kind: str, container: str | None = None) -> T:
    """The one item whose id equals ``wanted``, or whose name equals it case-insensitively.

    :param kind: ``workspace`` or ``dataset``, for messages.
    :param container: the workspace name, for dataset messages.
    :raises AmbiguousNameError: several items share the name; every candidate is listed with its id.
    :raises UnknownNameError: nothing matches; the closest names are listed.
    """
    key = wanted.strip()
    if is_guid(key):
        for item in items:
            if item.id.lower() == key.lower():
                return item
    folded = key.casefold()
    hits = [item for item in items if item.name.strip().casefold() == folded]
    where = f" in workspace {container!r}" if container else ""
    ws = container if kind == "dataset" else key
    ds = key if kind == "dataset" else None
    if len(hits) == 1:
        return hits[0]
    if hits:
        listing = ", ".join(f"{h.name!r} (id {h.id})" for h in hits)
        msg = (
            f"The {kind} name {key!r}{where} is ambiguous: {len(hits)} {kind}s match it (names are compared "
            f"case-insensitively): {listing}. Use the id of the one you mean instead of the name."
        )
        raise AmbiguousNameError(
            msg, candidates=[{"name": h.name, "id": h.id} for h in hits], workspace=ws, dataset=ds
        )
    by_folded: dict[str, list[T]] = {}
    for item in items:
        by_folded.setdefault(item.name.strip().casefold(), []).append(item)
    close = difflib.get_close_matches(folded, list(by_folded), n=5, cutoff=0.5)
    candidates = [{"name": i.name, "id": i.id} for name in close for i in by_folded[name]]
    if candidates:
        hint = "Closest names: " + ", ".join(f"{c['name']!r}" for c in candidates) + "."
    elif items:
        hint = f"None of the {len(items)} visible {kind}s has a similar name."
    else:
        hint = f"No {kind}s are visible at all."
    what = "an id" if is_guid(key) else "a name"
    msg = (
        f"No {kind} with {what} {key!r}{where} is visible to the service principal. {hint} Check the spelling "
        f"(or use the {kind} id); if the {kind} exists, make sure the service principal is a Member or Admin of "
        "its workspace."
    )
    raise UnknownNameError(msg, candidates=candidates, workspace=ws, dataset=ds)
