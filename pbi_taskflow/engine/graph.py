"""The lineage graph of a lineage-ordered refresh: which item reads which, and in what order to refresh them.

Power BI items form chains: dataflows feed semantic models (datasets), which feed composite models. A
:class:`LineageGraph` holds such items as :class:`Node` objects, keyed by their lower-cased ids, and the links
between them (a *reader* reads an *upstream* item). Its depths say when each item may refresh: depth 0 reads nothing
in the graph, any other item comes one level after the deepest item it reads.

Pure: no I/O and no Airflow. :mod:`~pbi_taskflow.engine.lineage` reads a graph from Power BI.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator

from pbi_taskflow.client.models import Target
from pbi_taskflow.errors import AmbiguousNameError, LineageCycleError, UnknownNameError

#: what to do about a cycle, for :class:`~pbi_taskflow.errors.LineageCycleError`
CYCLE_FIX = ("Remove one of these links in Power BI (change the source of one of the items so it no longer reads "
             "the next), or refresh without lineage order (upstream='ignore').")


@dataclasses.dataclass(frozen=True)
class Node:
    """One dataset or dataflow of a :class:`LineageGraph`.

    :param key: the item's id, lower-cased: its identity in the graph.
    :param item: ``dataset`` or ``dataflow``.
    :param id: the item's id, as Power BI gives it.
    :param name: the item's name.
    :param workspace_id: the id of the workspace it lives in.
    :param workspace_name: the name of that workspace.
    """

    key: str
    item: str
    id: str
    name: str
    workspace_id: str
    workspace_name: str

    @classmethod
    def of(cls, item: str, id: str, name: str, workspace_id: str, workspace_name: str) -> Node:
        """The node of an item, keyed by its lower-cased id."""
        return cls(id.lower(), item, id, name, workspace_id, workspace_name)

    @classmethod
    def of_target(cls, target: Target) -> Node:
        """The node of a resolved :class:`~pbi_taskflow.client.models.Target` (a dataset or a dataflow)."""
        return cls.of(target.item, target.dataset_id, target.dataset_name, target.workspace_id,
                      target.workspace_name)

    @property
    def label(self) -> str:
        """How messages name it: ``dataflow 'Sales ETL' (Finance)``."""
        return f"{self.short_label} ({self.workspace_name})"

    @property
    def short_label(self) -> str:
        """How messages name it next to an item of the same workspace: ``dataflow 'Sales ETL'``."""
        return f"{self.item} {self.name!r}"


class LineageGraph:
    """Datasets and dataflows, and which reads which; the order in which to refresh them follows."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._upstream: dict[str, list[str]] = {}
        self._downstream: dict[str, list[str]] = {}

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    @property
    def nodes(self) -> list[Node]:
        """Every node, in the order they were added."""
        return list(self._nodes.values())

    def node(self, key: str) -> Node:
        """The node with this key (an item id, any case).

        :raises KeyError: no node has it.
        """
        try:
            return self._nodes[key.lower()]
        except KeyError:
            msg = f"No item with id {key!r} in the lineage graph; add it before linking or reading it."
            raise KeyError(msg) from None

    def add(self, node: Node) -> Node:
        """Add ``node``; adding an item that is already there keeps (and returns) the first node."""
        if node.key in self._nodes:
            return self._nodes[node.key]
        self._nodes[node.key] = node
        self._upstream[node.key] = []
        self._downstream[node.key] = []
        return node

    def link(self, reader_key: str, upstream_key: str) -> None:
        """Record that ``reader_key`` reads ``upstream_key`` (both already added; linking twice changes nothing).

        :raises KeyError: either item is not in the graph.
        """
        reader, upstream = self.node(reader_key).key, self.node(upstream_key).key
        if upstream not in self._upstream[reader]:
            self._upstream[reader].append(upstream)
            self._downstream[upstream].append(reader)

    def upstream_of(self, key: str) -> list[Node]:
        """The items ``key`` reads directly, in the order they were linked."""
        return [self._nodes[k] for k in self._upstream[self.node(key).key]]

    def downstream_of(self, key: str) -> list[Node]:
        """The items that read ``key`` directly, in the order they were linked."""
        return [self._nodes[k] for k in self._downstream[self.node(key).key]]

    def after(self, key: str) -> tuple[str, ...]:
        """The keys of the items ``key`` must wait for: those it reads directly (each waits for its own)."""
        return tuple(self._upstream[self.node(key).key])

    # --- order -----------------------------------------------------------------------------------

    def depths(self) -> dict[str, int]:
        """Each item's depth: 0 when it reads nothing in the graph, else 1 + the deepest item it reads.

        :raises LineageCycleError: the graph holds a cycle, so no depth exists.
        """
        self.check()
        depths: dict[str, int] = {}
        for key in self._topological():
            depths[key] = 1 + max((depths[k] for k in self._upstream[key]), default=-1)
        return {key: depths[key] for key in self._nodes}

    def levels(self) -> list[list[Node]]:
        """The nodes grouped by depth, depth 0 first; within a level, in the order they were added.

        :raises LineageCycleError: the graph holds a cycle.
        """
        depths = self.depths()
        levels: list[list[Node]] = [[] for _ in range(max(depths.values(), default=-1) + 1)]
        for key, node in self._nodes.items():
            levels[depths[key]].append(node)
        return levels

    def _topological(self) -> list[str]:
        """Keys with every item after the items it reads (Kahn's algorithm; a cycle's items are left out)."""
        waiting = {key: len(ups) for key, ups in self._upstream.items()}
        ready = [key for key, count in waiting.items() if count == 0]
        order: list[str] = []
        while ready:
            key = ready.pop(0)
            order.append(key)
            for reader in self._downstream[key]:
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    ready.append(reader)
        return order

    # --- cycles ----------------------------------------------------------------------------------

    def check(self) -> None:
        """Return when the graph has no cycle.

        :raises LineageCycleError: naming one cycle in data-flow order (each item feeds the next), starting at its
            item added first: ``dataflow 'A' (Finance) -> dataflow 'B' (Finance) -> dataflow 'A'``.
        """
        cycle = self.find_cycle()
        if cycle is None:
            return
        nodes = [self._nodes[k] for k in cycle]
        labels = [n.label for n in nodes] + [nodes[0].short_label]
        msg = (f"The lineage holds a cycle, so no item of it can refresh before the others: {' -> '.join(labels)} "
               f"(each item feeds the next). Expected the dataflows and datasets to read each other without a loop. "
               f"{CYCLE_FIX}")
        raise LineageCycleError(msg, cycle=[n.label for n in nodes] + [nodes[0].label],
                                workspace=nodes[0].workspace_name, dataset=nodes[0].name)

    def find_cycle(self) -> list[str] | None:
        """The keys of one cycle in data-flow order (each feeds the next), starting at its item added first;
        ``None`` when there is none."""
        sorted_keys = set(self._topological())
        if len(sorted_keys) == len(self._nodes):
            return None
        start = next(k for k in self._nodes if k not in sorted_keys)
        cycle = self._walk_to_cycle(start, sorted_keys)
        first = min(cycle, key=list(self._nodes).index)
        at = cycle.index(first)
        return cycle[at:] + cycle[:at]

    def _walk_to_cycle(self, start: str, outside: set[str]) -> list[str]:
        """Walk upstream from ``start`` among items not in ``outside`` until an item repeats; its loop, reversed
        into data-flow order. Every such item reads another one of them, so the walk always finds a loop."""
        path: list[str] = []
        key = start
        while key not in path:
            path.append(key)
            key = next(k for k in self._upstream[key] if k not in outside)
        loop = path[path.index(key):]
        return loop[::-1]

    # --- lookup and display ----------------------------------------------------------------------

    def find(self, name_or_id: str) -> Node:
        """The node with this id (any case), or else this name (case-insensitive).

        :raises AmbiguousNameError: several nodes have the name; each is listed with its id and workspace.
        :raises UnknownNameError: none has it; the closest names are listed.
        """
        wanted = name_or_id.strip()
        if wanted.lower() in self._nodes:
            return self._nodes[wanted.lower()]
        hits = [n for n in self._nodes.values() if n.name.strip().casefold() == wanted.casefold()]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise _ambiguous(wanted, hits)
        raise _unknown(wanted, list(self._nodes.values()))

    def render(self) -> list[str]:
        """One line per item, by depth: ``depth 1: dataset 'Sales' (Finance) <- dataflow 'Sales ETL'``.

        Items it reads in another workspace carry their workspace.

        :raises LineageCycleError: the graph holds a cycle.
        """
        return [_line(depth, node, self.upstream_of(node.key))
                for depth, level in enumerate(self.levels()) for node in level]


def _line(depth: int, node: Node, upstream: list[Node]) -> str:
    line = f"depth {depth}: {node.label}"
    if upstream:
        line += " <- " + ", ".join(u.short_label if u.workspace_id.lower() == node.workspace_id.lower() else u.label
                                   for u in upstream)
    return line


def _ambiguous(wanted: str, hits: list[Node]) -> AmbiguousNameError:
    listing = ", ".join(f"{h.label} (id {h.id})" for h in hits)
    msg = (f"The name {wanted!r} is ambiguous in the lineage graph: {len(hits)} items have it (names are compared "
           f"case-insensitively): {listing}. Use the id of the one you mean instead of the name.")
    return AmbiguousNameError(msg, candidates=[_candidate(h) for h in hits], dataset=wanted)


def _unknown(wanted: str, nodes: list[Node]) -> UnknownNameError:
    by_name: dict[str, list[Node]] = {}
    for node in nodes:
        by_name.setdefault(node.name.strip().casefold(), []).append(node)
    close = difflib.get_close_matches(wanted.casefold(), list(by_name), n=5, cutoff=0.5)
    candidates = [n for name in close for n in by_name[name]]
    if candidates:
        hint = "Closest items: " + ", ".join(n.label for n in candidates) + "."
    else:
        hint = f"None of its {len(nodes)} items has a similar name." if nodes else "The graph is empty."
    msg = (f"No item with the id or name {wanted!r} is in the lineage graph. {hint} Check the spelling (or use the "
           "item's id), and that the item is selected or read by a selected item.")
    return UnknownNameError(msg, candidates=[_candidate(n) for n in candidates], dataset=wanted)


def _candidate(node: Node) -> dict[str, str]:
    return {"name": node.name, "id": node.id, "item": node.item, "workspace": node.workspace_name}


__all__ = ["LineageGraph", "Node"]
