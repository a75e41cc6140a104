"""Reading the lineage graph of a lineage-ordered refresh (``upstream="order"`` or ``"refresh"``) from Power BI.

:func:`read_graph` starts from the selected targets and reads, with the sync client:

- the dataflows each selected dataset reads: one ``GET /groups/{id}/datasets/upstreamDataflows`` per workspace
  holding a selected dataset (it answers for every dataset of the workspace);
- the dataflows each dataflow of the graph reads (``GET …/dataflows/{id}/upstreamDataflows``, once per dataflow),
  followed from one dataflow to the next across workspaces; each workspace reached goes through the connection's
  allow-list (:meth:`~pbi_taskflow.client.resolve.NameResolver.allowed_workspace`) and its dataflows are listed once,
  for their names;
- the selected datasets each selected composite model reads: its data sources (``GET …/datasets/{id}/datasources``)
  of type ``AnalysisServices`` on a ``powerbi://…/<workspace>`` server whose ``database`` is the model's name.
  Composite models are ordered among the selection, never added to it; a data source read that Power BI refuses
  or does not find only logs a warning.

With ``add_upstream=True`` every dataflow reached is refreshed too: it joins the returned targets. With
``add_upstream=False`` only the selection is refreshed; the graph keeps the links among it, also those that run
through dataflows outside the selection. An item that cannot be read (a workspace outside the allow-list, a 401, 403
or 404 answer) raises :class:`~pbi_taskflow.errors.LineageError`, except, with ``add_upstream=False``, beyond the
selection: then it is logged and not followed. A cycle raises :class:`~pbi_taskflow.errors.LineageCycleError`.
Nothing is refreshed while the graph is read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import unquote

from pbi_taskflow.client.models import DataflowInfo, Datasource, RefreshOptions, Target, UpstreamDataflow, Workspace
from pbi_taskflow.engine.graph import LineageGraph, Node
from pbi_taskflow.errors import (
    LineageError,
    NameResolutionError,
    NotFoundError,
    PermissionDeniedError,
    PowerBIError,
    WorkspaceNotAllowedError,
)

log = logging.getLogger("pbi_taskflow.engine.lineage")

#: the answers that make a lineage read impossible (rather than transient)
UNREADABLE = (PermissionDeniedError, NotFoundError, NameResolutionError, WorkspaceNotAllowedError)
#: the data source type and server scheme of a composite model's link to a Power BI semantic model
COMPOSITE_TYPE, COMPOSITE_SCHEME = "analysisservices", "powerbi://"


class LineageClient(Protocol):
    """The sync client calls :func:`read_graph` makes (:class:`~pbi_taskflow.client.sync.PowerBIClient` has them)."""

    def allowed_workspace(self, ref: str) -> Workspace: ...

    def dataset_upstream_dataflows(self, workspace: Workspace, /) -> list[UpstreamDataflow]: ...

    def dataflow_upstream_dataflows(self, dataflow: DataflowInfo, /) -> list[UpstreamDataflow]: ...

    def list_dataflows(self, workspace: Workspace, /) -> list[DataflowInfo]: ...

    def list_datasources(self, target: Target, /) -> list[Datasource]: ...


def read_graph(client: LineageClient, targets: list[Target], *, add_upstream: bool
               ) -> tuple[LineageGraph, list[Target]]:
    """The lineage graph of ``targets`` and the targets to refresh, in Power BI's lineage order.

    :param client: a sync client (:class:`~pbi_taskflow.client.sync.PowerBIClient`).
    :param targets: the resolved selection: datasets and dataflows.
    :param add_upstream: ``True`` (``upstream="refresh"``): refresh every dataflow the selection reads, directly or
        not, too; ``False`` (``upstream="order"``): keep only the selection, ordered by the links among it.
    :return: the graph (every item to refresh and what it reads), and the targets: the given ones in their order,
        then the added dataflows, upstream first.
    :raises LineageError: lineage the refresh depends on could not be read.
    :raises LineageCycleError: the items read each other in a cycle.
    """
    reader = _Reader(client, targets, strict=add_upstream)
    full = reader.read()
    full.check()
    if add_upstream:
        return full, [*targets, *reader.added_targets()]
    graph = _among(full, reader.selected)
    graph.check()
    return graph, list(targets)


def _among(full: LineageGraph, selected: set[str]) -> LineageGraph:
    """The selected items of ``full``, each linked to the selected items it reads directly or through others."""
    graph = LineageGraph()
    for node in full.nodes:
        if node.key in selected:
            graph.add(node)
    for node in graph.nodes:
        for upstream in _selected_upstream(full, node.key, selected):
            graph.link(node.key, upstream)
    return graph


def _selected_upstream(full: LineageGraph, key: str, selected: set[str]) -> list[str]:
    """The selected items ``key`` reads, directly or through items that are not selected."""
    found: list[str] = []
    seen: set[str] = set()
    todo = [u.key for u in full.upstream_of(key)]
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if current in selected:
            found.append(current)
        else:
            todo.extend(u.key for u in full.upstream_of(current))
    return found


class _Unreadable(Exception):
    """A lineage read that cannot be made: what, in which workspace, what would make it possible, and why."""

    def __init__(self, problem: str, workspace: str, remedy: str, cause: PowerBIError | None = None) -> None:
        super().__init__(problem)
        self.problem, self.workspace, self.remedy, self.cause = problem, workspace, remedy, cause


def _remedy_allow(workspace: str) -> str:
    return f"add workspace {workspace} to the connection's allowed_workspaces"


def _remedy_access(workspace: str) -> str:
    return f"make the service principal a Member or Admin of workspace {workspace!r} (or check that the item exists)"


def _lineage_error(unreadable: _Unreadable, strict: bool) -> LineageError:
    """The :class:`LineageError` of an unreadable read; ``strict``: upstream dataflows were to be refreshed too."""
    alternative = ("use upstream='order' (order the selection without refreshing what it reads) or upstream='ignore'"
                   if strict else "use upstream='ignore' (refresh the selection without lineage order)")
    msg = (f"Cannot read the lineage of this lineage-ordered refresh: {unreadable.problem}. Expected every dataflow "
           f"the selection reads to be readable through the connection. To fix it, {unreadable.remedy}, or "
           f"{alternative}. No refresh was started.")
    cause = unreadable.cause
    return LineageError(msg, workspace=unreadable.workspace, status=cause.status if cause else None,
                        code=cause.code if cause else None, request_id=cause.request_id if cause else None)


def reads_semantic_model(source: Datasource) -> bool:
    """Whether ``source`` is a composite model's link to a Power BI semantic model (``AnalysisServices`` on a
    ``powerbi://`` server): a cloud source that needs no gateway."""
    server = str(source.connection_details.get("server") or "").strip()
    return source.datasource_type.casefold() == COMPOSITE_TYPE and server.casefold().startswith(COMPOSITE_SCHEME)


def composite_link(source: Datasource, workspace_name: str, dataset: Node) -> bool:
    """Whether ``source`` (a data source of a composite model) reads ``dataset`` of workspace ``workspace_name``.

    It does when it is an ``AnalysisServices`` source whose server is ``powerbi://…/<workspace name>`` (URL-encoded
    or not) and whose database is the dataset's name (or id).
    """
    if not reads_semantic_model(source):
        return False
    server = unquote(str(source.connection_details.get("server") or "")).strip().rstrip("/")
    database = str(source.connection_details.get("database") or "").strip()
    if not server.casefold().endswith("/" + workspace_name.strip().casefold()):
        return False
    return database.casefold() == dataset.name.strip().casefold() or database.lower().endswith(dataset.key)


class _Reader:
    """One reading of the lineage: each workspace, dataflow listing and lineage read at most once."""

    def __init__(self, client: LineageClient, targets: list[Target], *, strict: bool) -> None:
        self.client = client
        self.targets = targets
        self.strict = strict
        self.graph = LineageGraph()
        self.selected = {self.graph.add(Node.of_target(t)).key for t in targets}
        self.workspaces: dict[str, Workspace] = {}
        self.dedicated: dict[str, bool | None] = {}
        self.dataflows: dict[str, dict[str, DataflowInfo]] = {}
        self.followed: set[str] = set()
        for target in targets:
            self._remember(Workspace(target.workspace_id, target.workspace_name), target.on_dedicated_capacity)

    def _remember(self, workspace: Workspace, dedicated: bool | None) -> None:
        key = workspace.id.lower()
        if key not in self.workspaces:
            self.workspaces[key] = workspace
            self.dedicated[key] = dedicated

    def read(self) -> LineageGraph:
        """Read every link the graph needs; returns the full graph (the selection and all it reaches)."""
        self._dataset_links()
        self._dataflow_links()
        self._composite_links()
        return self.graph

    # --- datasets reading dataflows --------------------------------------------------------------

    def _dataset_links(self) -> None:
        """One ``datasets/upstreamDataflows`` read per workspace holding a selected dataset."""
        done: set[str] = set()
        for target in self.targets:
            if target.is_dataflow or target.workspace_id.lower() in done:
                continue
            done.add(target.workspace_id.lower())
            workspace = self.workspaces[target.workspace_id.lower()]
            with self._reading(f"the upstream dataflows of the datasets of workspace {workspace.name!r}",
                               workspace.name, selected=True):
                links = self.client.dataset_upstream_dataflows(workspace)
                self._link_all([x for x in links if x.reader_id.lower() in self.selected])

    def _link_all(self, links: list[UpstreamDataflow]) -> None:
        for link in links:
            upstream = self._dataflow_node(link)
            if upstream is not None:
                self.graph.link(link.reader_id, upstream.key)

    # --- dataflows reading dataflows -------------------------------------------------------------

    def _dataflow_links(self) -> None:
        """Follow every dataflow of the graph to the dataflows it reads, until none is new."""
        todo = [n for n in self.graph.nodes if n.item == "dataflow"]
        while todo:
            node = todo.pop(0)
            if node.key in self.followed:
                continue
            self.followed.add(node.key)
            with self._reading(f"the upstream dataflows of {node.label}", node.workspace_name,
                               selected=node.key in self.selected):
                links = self.client.dataflow_upstream_dataflows(
                    DataflowInfo(node.id, node.name, node.workspace_id))
                self._link_all(links)
                todo.extend(self.graph.upstream_of(node.key))

    def _dataflow_node(self, link: UpstreamDataflow) -> Node | None:
        """The node of the dataflow ``link`` reads (added when new); ``None`` when it cannot be read and need not."""
        if link.dataflow_id in self.graph:
            return self.graph.node(link.dataflow_id)
        what = f"dataflow {link.dataflow_id}, which {self.graph.node(link.reader_id).label} reads"
        with self._reading(f"the workspace and name of {what}", link.workspace_id, selected=False):
            workspace = self._workspace(link.workspace_id, what)
            info = self._listed(workspace).get(link.dataflow_id.lower())
            if info is None:
                raise _Unreadable(f"{what}, is not listed in workspace {workspace.name!r}", workspace.name,
                                  _remedy_access(workspace.name))
            return self.graph.add(Node.of("dataflow", info.id, info.name, workspace.id, workspace.name))
        return None

    def _workspace(self, workspace_id: str, what: str) -> Workspace:
        """The workspace with this id, once the connection's allow-list admits it (resolved once)."""
        key = workspace_id.lower()
        if key not in self.workspaces:
            try:
                workspace = self.client.allowed_workspace(workspace_id)
            except WorkspaceNotAllowedError as exc:
                raise _Unreadable(f"{what}, lives in workspace {workspace_id}, which the connection may not use "
                                  "(it is not in its allowed_workspaces)", workspace_id,
                                  _remedy_allow(workspace_id)) from exc
            self._remember(workspace, workspace.is_on_dedicated_capacity)
        return self.workspaces[key]

    def _listed(self, workspace: Workspace) -> dict[str, DataflowInfo]:
        """The dataflows of ``workspace`` by lower-cased id (listed once)."""
        key = workspace.id.lower()
        if key not in self.dataflows:
            self.dataflows[key] = {d.id.lower(): d for d in self.client.list_dataflows(workspace)}
        return self.dataflows[key]

    # --- composite models --------------------------------------------------------------------------

    def _composite_links(self) -> None:
        """Link each selected composite model to the selected datasets it reads."""
        datasets = [t for t in self.targets if not t.is_dataflow]
        for target in datasets:
            for source in self._sources(target):
                for other in datasets:
                    upstream = self.graph.node(other.dataset_id)
                    if upstream.key != target.dataset_id.lower() and composite_link(source, other.workspace_name,
                                                                                    upstream):
                        self.graph.link(target.dataset_id, upstream.key)

    def _sources(self, target: Target) -> list[Datasource]:
        """The data sources of a selected dataset; none (and a warning) when Power BI refuses the read."""
        try:
            return self.client.list_datasources(target)
        except (PermissionDeniedError, NotFoundError) as exc:
            log.warning("Could not read the data sources of dataset %r (%s), so it is not ordered after the "
                        "semantic models it may read as a composite model: %s", target.dataset_name,
                        target.workspace_name, exc)
            return []

    # --- errors ----------------------------------------------------------------------------------

    @contextmanager
    def _reading(self, what: str, workspace: str, *, selected: bool) -> Iterator[None]:
        """Turn a read that cannot be made into :class:`LineageError`; beyond the selection of ``upstream="order"``,
        into a warning (the read is then skipped)."""
        try:
            yield
        except _Unreadable as exc:
            self._fail(exc, selected)
        except UNREADABLE as exc:
            self._fail(_Unreadable(f"Power BI refused or did not find {what} ({exc.message})", workspace,
                                   _remedy_access(workspace), exc), selected)

    def _fail(self, unreadable: _Unreadable, selected: bool) -> None:
        if self.strict or selected:
            raise _lineage_error(unreadable, self.strict) from unreadable.cause
        log.warning("Lineage order: %s. It is not followed further: an item that reaches the selection only through "
                    "it is not ordered after what it reads (%s to let it be followed).", unreadable.problem,
                    unreadable.remedy)

    # --- added targets ---------------------------------------------------------------------------

    def added_targets(self) -> list[Target]:
        """The dataflows reached beyond the selection, as targets to refresh, upstream first."""
        depths = self.graph.depths()
        added = [n for n in self.graph.nodes if n.key not in self.selected]
        return [self._target(n) for n in sorted(added, key=lambda n: depths[n.key])]

    def _target(self, node: Node) -> Target:
        return Target(workspace_id=node.workspace_id, workspace_name=node.workspace_name, dataset_id=node.id,
                      dataset_name=node.name, options=RefreshOptions(notify_option="NoNotification"),
                      on_dedicated_capacity=self.dedicated.get(node.workspace_id.lower()),
                      profile_id=_profile(self.client), item="dataflow")


def _profile(client: Any) -> str | None:
    profile = getattr(client, "profile_id", None)
    return profile if isinstance(profile, str) else None


__all__ = ["LineageClient", "composite_link", "read_graph", "reads_semantic_model"]
