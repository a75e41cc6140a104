"""``powerbi_context()``: Power BI facts for deciding what to refresh, inside any task.

Typical use, in the function of a ``@powerbi_refresh`` task::

    pbi = powerbi_context()
    return [
        name for name in changed_models
        if not pbi.refreshed_within(name, timedelta(hours=1))
    ]

Inside a ``@powerbi_refresh`` task the connection and workspace default to the task's own.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pbi_taskflow.client.durations import required_seconds
from pbi_taskflow.client.models import Dataset, HistoryEntry, RefreshStatus, Workspace, parse_timestamp
from pbi_taskflow.errors import ConfigurationError

if TYPE_CHECKING:
    from pbi_taskflow.client.sync import PowerBIClient
    from pbi_taskflow.engine.graph import LineageGraph, Node

#: Refreshes a dataset on shared (Pro) capacity may have per 24 hours.
SHARED_DAILY_QUOTA = 8
#: History refresh types that do not count toward the daily quota (the portal's "Refresh now").
_NOT_COUNTED = frozenset({"ondemand", "ondemandtraining"})


def _current_task() -> Any:
    try:
        from airflow.sdk import get_current_context

        return get_current_context().get("task")
    except Exception:  # noqa: BLE001 - outside a running task
        return None


class PowerBIContext:
    """Power BI as seen through one connection, for one workspace.

    :param conn_id: the Airflow connection (default: the running refresh task's, else ``powerbi_default``).
    :param workspace: workspace name or id (default: the running refresh task's ``workspace``).
    :param client: an existing client to use instead of building one from the connection.
    :param profile_id: the service principal profile to act as (default: the running refresh task's ``profile_id``,
        else the connection's).
    """

    def __init__(self, conn_id: str | None = None, workspace: str | None = None, *, client: Any = None,
                 profile_id: str | None = None) -> None:
        task = _current_task()
        self.conn_id = conn_id or getattr(task, "conn_id", None) or "powerbi_default"
        self.workspace_ref = workspace or getattr(task, "workspace", None)
        self.profile_id = profile_id or getattr(task, "profile_id", None)
        self._client = client
        self._graph: LineageGraph | None = None

    def __repr__(self) -> str:
        return f"PowerBIContext(conn_id={self.conn_id!r}, workspace={self.workspace_ref!r})"

    @property
    def client(self) -> PowerBIClient:
        """The authenticated :class:`~pbi_taskflow.client.sync.PowerBIClient` of the connection."""
        if self._client is None:
            from pbi_taskflow.airflow.hook import PowerBIHook

            acting_as = {"profile_id": self.profile_id} if isinstance(self.profile_id, str) else {}
            self._client = PowerBIHook(self.conn_id, **acting_as).get_client()
        client: PowerBIClient = self._client
        return client

    @cached_property
    def workspace(self) -> Workspace:
        """The resolved workspace."""
        if not self.workspace_ref:
            msg = "powerbi_context() needs a workspace: pass workspace='<name or id>' (or set it on the task)."
            raise ConfigurationError(msg)
        return self.client.get_workspace(self.workspace_ref)

    def datasets(self) -> list[Dataset]:
        """The workspace's datasets (name, id, refreshable, ...)."""
        return self.client.list_datasets(self.workspace)

    def dataset(self, name_or_id: str) -> Dataset:
        """One dataset by name (case-insensitive) or id."""
        return self.client.get_dataset(self.workspace, name_or_id)

    def history(self, dataset: str, top: int = 60) -> list[HistoryEntry]:
        """The dataset's refresh history, newest first."""
        ds = self.dataset(dataset)
        return self.client.refresh_history(self.workspace.id, ds.id, top=top, _names=(self.workspace.name, ds.name))

    def last_refresh(self, dataset: str) -> HistoryEntry | None:
        """The dataset's latest refresh (``.status``, ``.end``, ``.duration_s``), or None without history."""
        entries = self.history(dataset, top=1)
        return entries[0] if entries else None

    def last_success(self, dataset: str) -> HistoryEntry | None:
        """The dataset's latest successful refresh, or None."""
        return next((e for e in self.history(dataset) if e.status is RefreshStatus.COMPLETED), None)

    def refreshed_within(self, dataset: str, period: dt.timedelta | float) -> bool:
        """Whether the dataset finished a successful refresh within ``period`` (timedelta or seconds)."""
        seconds = required_seconds(period, "period")
        last = self.last_success(dataset)
        end = parse_timestamp(last.end) if last else None
        return end is not None and (dt.datetime.now(dt.timezone.utc) - end).total_seconds() < seconds

    def lineage(self) -> LineageGraph:
        """The workspace's lineage graph: its refreshable datasets, the dataflows they read (across the workspaces
        the connection may use) and the models composite models read; read once per context.

        ``.render()`` gives it by depth; ``.depths()``, ``.levels()`` and ``.upstream_of(key)`` walk it.

        :raises LineageError: lineage could not be read (a workspace outside the connection's allow-list, access).
        :raises LineageCycleError: items read each other in a cycle.
        """
        if self._graph is None:
            from pbi_taskflow.client.models import Target
            from pbi_taskflow.engine.lineage import read_graph

            ws = self.workspace
            targets = [Target(ws.id, ws.name, d.id, d.name, on_dedicated_capacity=ws.is_on_dedicated_capacity,
                              profile_id=self.client.profile_id) for d in self.datasets() if d.is_refreshable]
            self._graph = read_graph(self.client, targets, add_upstream=True)[0]
        return self._graph

    def upstream(self, name: str) -> list[Node]:
        """What a dataset or dataflow of the workspace (name, case-insensitive, or id) reads directly: the dataflows,
        and for a composite model the models; each :class:`~pbi_taskflow.engine.graph.Node` has ``item``
        (``dataset``/``dataflow``), ``name``, ``id`` and ``workspace_name``."""
        graph = self.lineage()
        return graph.upstream_of(graph.find(name).key)

    def quota_remaining(self, dataset: str) -> int | None:
        """Refreshes left today for a dataset on shared capacity (8 per 24 h); None on dedicated capacity."""
        if self.workspace.is_on_dedicated_capacity:
            return None
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=24)
        used = 0
        for entry in self.history(dataset):
            start = parse_timestamp(entry.start)
            kind = (entry.refresh_type or "").replace(" ", "").lower()
            if start is not None and start >= since and kind not in _NOT_COUNTED:
                used += 1
        return max(0, SHARED_DAILY_QUOTA - used)


def powerbi_context(conn_id: str | None = None, workspace: str | None = None) -> PowerBIContext:
    """Power BI facts for the connection and workspace (defaults: the running refresh task's own)."""
    return PowerBIContext(conn_id, workspace)


__all__ = ["SHARED_DAILY_QUOTA", "PowerBIContext", "powerbi_context"]
