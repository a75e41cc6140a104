"""The Airflow hook of the ``pbi_taskflow`` connection type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]

from pbi_taskflow.connection import CONN_TYPE, DEFAULT_CONN_ID, get_settings

if TYPE_CHECKING:
    from pbi_taskflow.client import PowerBIClient
    from pbi_taskflow.settings import ConnectionSettings


class PowerBIHook(BaseHook):  # type: ignore[misc]
    """Power BI through an Airflow connection of type ``pbi_taskflow``.

    :param conn_id: the Airflow connection id.
    :param client_kwargs: passed to :class:`~pbi_taskflow.client.PowerBIClient` (e.g. ``retry``, ``timeout``).
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Power BI (pbi_taskflow)"

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, **client_kwargs: Any) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.client_kwargs = client_kwargs
        self._client: PowerBIClient | None = None

    def __repr__(self) -> str:
        return f"PowerBIHook(conn_id={self.conn_id!r})"

    def get_settings(self) -> ConnectionSettings:
        """The connection's validated settings (secrets masked in Airflow logs)."""
        return get_settings(self.conn_id)

    def get_client(self) -> PowerBIClient:
        """An authenticated :class:`~pbi_taskflow.client.PowerBIClient`, created once per hook."""
        if self._client is None:
            self._client = self.get_settings().build_client(**self.client_kwargs)
        return self._client

    def get_conn(self) -> PowerBIClient:
        return self.get_client()

    def test_connection(self) -> tuple[bool, str]:
        """Get a token and list the workspaces the service principal can see."""
        from pbi_taskflow.errors import PowerBIError

        try:
            client = self.get_client()
            workspaces = client.list_workspaces(top=100)
        except PowerBIError as exc:
            return False, str(exc)
        names = ", ".join(sorted(w.name for w in workspaces)[:10]) or "none"
        return True, f"Connected: the app sees {len(workspaces)} workspace(s) ({names})."


__all__ = ["PowerBIHook"]
