"""Which workspace or dataset a name means, and which workspaces a connection may touch (pure)."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pbi_taskflow.client.api import is_guid
from pbi_taskflow.client.models import DataflowInfo, Dataset, Workspace
from pbi_taskflow.errors import AmbiguousNameError, ConfigurationError, UnknownNameError, WorkspaceNotAllowedError

T = TypeVar("T", Workspace, Dataset, DataflowInfo)


def pick(items: Sequence[T], wanted: str, *, kind: str, container: str | None = None) -> T:
    """The one item whose id equals ``wanted``, or whose name equals it case-insensitively.

    :param kind: ``workspace``, ``dataset`` or ``dataflow``, for messages.
    :param container: the workspace name, for dataset and dataflow messages.
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
    ws = key if kind == "workspace" else container
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
        "its workspace (Contributor is usually enough to refresh)."
    )
    raise UnknownNameError(msg, candidates=candidates, workspace=ws, dataset=ds)


def normalise_allowed(value: Iterable[str] | str | None) -> tuple[str, ...]:
    """An allow-list as every caller gives it: a list, a JSON list or a comma-separated string; blanks dropped.

    The one reader of ``allowed_workspaces``, for the client argument and the connection's extra alike.

    :raises ConfigurationError: for anything but strings, naming the wrong value.
    """
    if value is None or value == "":
        return ()
    items: Any
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                items = text.strip("[]").split(",")
        else:
            items = text.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)
    else:
        items = value
    if not isinstance(items, list):
        msg = (f"Invalid allowed_workspaces {value!r}: expected a list of workspace names or ids, or a "
               "comma-separated string.")
        raise ConfigurationError(msg)
    out = []
    for item in items:
        if not isinstance(item, str):
            msg = f"Invalid allowed_workspaces entry {item!r}: expected workspace names or ids (strings)."
            raise ConfigurationError(msg)
        name = item.strip().strip("'\"")
        if name:
            out.append(name)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class AllowList:
    """The workspaces (names or ids, case-insensitive) a connection may refresh; empty allows all.

    :param entries: allowed workspace names or ids.
    :param conn_id: the connection, for messages.
    """

    entries: tuple[str, ...] = ()
    conn_id: str | None = None

    def allows(self, *values: str) -> bool:
        """Whether any of ``values`` (a workspace's name and/or id) is listed."""
        folded = {a.casefold() for a in self.entries}
        return any(v.strip().casefold() in folded for v in values if v)

    def error(self, workspace: str) -> WorkspaceNotAllowedError:
        """The error for a workspace outside the list."""
        conn = f"connection {self.conn_id!r}" if self.conn_id else "this client"
        listing = ", ".join(repr(a) for a in self.entries)
        msg = (
            f"Workspace {workspace!r} is not allowed for {conn}: its allowed_workspaces are {listing}. Add the "
            "workspace (name or id) to the connection's allowed_workspaces, or refresh a dataset in an allowed workspace."
        )
        return WorkspaceNotAllowedError(msg, workspace=workspace)

    def check(self, workspace: str) -> bool:
        """Raise unless ``workspace`` may be used; ``False`` means "decided only once resolved".

        A name or id found in the list passes at once. A GUID when the list holds only GUIDs (or a
        name when it holds only names) fails at once, before any HTTP call. Otherwise the resolved
        workspace's id and name must be checked with :meth:`allows`.
        """
        if not self.entries or self.allows(workspace):
            return True
        guids = [is_guid(a) for a in self.entries]
        if (is_guid(workspace) and all(guids)) or (not is_guid(workspace) and not any(guids)):
            raise self.error(workspace)
        return False
