"""Names to ids for the sync client: workspace and dataset lookups with a per-client cache."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pbi_taskflow.client import api
from pbi_taskflow.client.models import Dataset, Refresh, RefreshOptions, Target, Workspace
from pbi_taskflow.client.names import AllowList, normalise_allowed, pick
from pbi_taskflow.errors import ConfigurationError, PowerBIError


class NameResolver:
    """Workspace/dataset lookups by name or id, the allow-list and :meth:`resolve`.

    Mixed into :class:`~pbi_taskflow.client.sync.PowerBIClient`, which provides :meth:`call`.
    """

    conn_id: str | None
    _allow: AllowList

    def _init_resolver(self, allowed_workspaces: Iterable[str] | str | None) -> None:
        self._workspaces: dict[str, Workspace] = {}
        self._datasets: dict[str, list[Dataset]] = {}
        self.allowed_workspaces = allowed_workspaces

    def call(self, request: api.ApiRequest) -> api.ApiResponse:
        raise NotImplementedError

    def list_workspaces(self, name: str | None = None, top: int | None = None) -> list[Workspace]:
        """Workspaces visible to the service principal (``name``: exact ``$filter``)."""
        found = api.parse_workspaces(self.call(api.list_groups(name=name, top=top)).body)
        for ws in found:
            self._remember_workspace(ws)
        return found

    def _remember_workspace(self, ws: Workspace) -> None:
        self._workspaces[ws.id.lower()] = ws

    def get_workspace(self, name_or_id: str) -> Workspace:
        """The workspace with this id, or this name (case-insensitive, exact).

        :raises AmbiguousNameError: several workspaces have the name.
        :raises UnknownNameError: none has it; the closest names are listed.
        """
        key = _text(name_or_id, "workspace")
        cached = self._cached_workspace(key)
        if cached is not None:
            return cached
        if not api.is_guid(key):
            hits = [w for w in self.list_workspaces(name=key) if w.name.strip().casefold() == key.casefold()]
            if len(hits) == 1:
                return hits[0]
            if hits:
                return pick(hits, key, kind="workspace")
        return pick(self.list_workspaces(), key, kind="workspace")

    def _cached_workspace(self, key: str) -> Workspace | None:
        if api.is_guid(key):
            return self._workspaces.get(key.lower())
        hits = [w for w in self._workspaces.values() if w.name.strip().casefold() == key.casefold()]
        return hits[0] if len(hits) == 1 else None

    def _workspace_ref(self, workspace: Workspace | str) -> tuple[str, str]:
        if isinstance(workspace, Workspace):
            return workspace.id, workspace.name
        key = _text(workspace, "workspace")
        if api.is_guid(key):
            cached = self._workspaces.get(key.lower())
            return key, cached.name if cached else key
        ws = self.get_workspace(key)
        return ws.id, ws.name

    def list_datasets(self, workspace: Workspace | str) -> list[Dataset]:
        """Datasets of a workspace (a :class:`Workspace`, an id or a name)."""
        ws_id, ws_name = self._workspace_ref(workspace)
        found = api.parse_datasets(self.call(api.list_datasets(ws_id, workspace=ws_name)).body, ws_id)
        self._datasets[ws_id.lower()] = found
        return found

    def get_dataset(self, workspace: Workspace | str, name_or_id: str) -> Dataset:
        """The dataset with this id, or this name (case-insensitive, exact), in ``workspace``.

        :raises AmbiguousNameError: several datasets have the name.
        :raises UnknownNameError: none has it; the closest names are listed.
        """
        key = _text(name_or_id, "dataset")
        ws_id, ws_name = self._workspace_ref(workspace)
        cached = self._datasets.get(ws_id.lower())
        if cached is not None:
            try:
                return pick(cached, key, kind="dataset", container=ws_name)
            except PowerBIError:
                pass
        if api.is_guid(key):
            resp = self.call(api.get_dataset(ws_id, key, workspace=ws_name))
            if isinstance(resp.body, dict) and resp.body.get("id"):
                return api.parse_dataset(resp.body, ws_id)
        return pick(self.list_datasets(Workspace(ws_id, ws_name)), key, kind="dataset", container=ws_name)

    # --- allow-list and resolution -------------------------------------------------------------

    @property
    def allowed_workspaces(self) -> tuple[str, ...]:
        """Names or ids of the only workspaces this client may touch (empty: no restriction)."""
        return self._allow.entries

    @allowed_workspaces.setter
    def allowed_workspaces(self, value: Iterable[str] | str | None) -> None:
        self._allow = AllowList(normalise_allowed(value), self.conn_id)

    def check_workspace_allowed(self, workspace: str) -> bool:
        """Raise unless ``workspace`` may be used; ``False`` means "decided only once resolved" (see :class:`AllowList`)."""
        return self._allow.check(workspace)

    def allowed_workspace(self, ref: str) -> Workspace:
        """The workspace with this name or id, once the allow-list admits it (checked before any call if it can be)."""
        decided = self._allow.check(ref)
        ws = self.get_workspace(ref)
        if not decided and not self._allow.allows(ws.id, ws.name):
            raise self._allow.error(ref)
        return ws

    def resolve(
        self, refresh: Refresh, default_workspace: str | None = None, defaults: RefreshOptions | None = None
    ) -> Target:
        """Names to ids: the :class:`Target` of ``refresh`` (workspace allow-list enforced first)."""
        ref = refresh.workspace or default_workspace
        if not ref or not ref.strip():
            msg = (
                f"No workspace given for dataset {refresh.dataset!r}: set workspace= on the refresh, or a default "
                "workspace on the task."
            )
            raise ConfigurationError(msg, dataset=refresh.dataset)
        ws = self.allowed_workspace(ref)
        ds = self.get_dataset(ws, refresh.dataset)
        options = refresh.options.merged(defaults) if defaults is not None else refresh.options
        return Target(
            workspace_id=ws.id,
            workspace_name=ws.name,
            dataset_id=ds.id,
            dataset_name=ds.name,
            options=options,
            on_dedicated_capacity=ws.is_on_dedicated_capacity,
            profile_id=getattr(self, "profile_id", None),
        )



def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"Invalid {what} {value!r}: expected a {what} name or id (a non-empty string)."
        raise ConfigurationError(msg)
    return value.strip()
