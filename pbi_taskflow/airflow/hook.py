"""The Airflow hook of the ``pbi_taskflow`` connection type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]

from pbi_taskflow.airflow.connection import CONN_TYPE, DEFAULT_CONN_ID, get_settings

if TYPE_CHECKING:
    from pbi_taskflow.client.settings import ConnectionSettings
    from pbi_taskflow.client.sync import PowerBIClient


class PowerBIHook(BaseHook):  # type: ignore[misc]
    """Power BI through an Airflow connection of type ``pbi_taskflow``.

    :param conn_id: the Airflow connection id.
    :param client_kwargs: passed to :class:`~pbi_taskflow.client.sync.PowerBIClient` (e.g. ``retry``, ``timeout``).
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
        """An authenticated :class:`~pbi_taskflow.client.sync.PowerBIClient`, created once per hook."""
        if self._client is None:
            self._client = self.get_settings().build_client(**self.client_kwargs)
        return self._client

    def get_conn(self) -> PowerBIClient:
        return self.get_client()

    def test_connection(self) -> tuple[bool, str]:
        """What the connection form's Test button shows: sign in afresh, then list the workspaces the app sees.

        Never raises: every failure is ``(False, message)`` whose first sentence says what failed and the rest
        what to change (a wrong secret, an unknown tenant or app, no workspace visible, ...).
        """
        from pbi_taskflow.errors import ConfigurationError, PowerBIError

        try:
            settings = self.get_settings()
        except ConfigurationError as exc:
            return False, f"The connection is incomplete. {exc}"
        client = None
        signed_in = False
        try:
            client = settings.build_client(**self.client_kwargs)
            client.credential.get_token()  # tokens are cached per credential material: a changed secret signs in anew
            signed_in = True
            workspaces = client.list_workspaces()
        except PowerBIError as exc:
            return False, _failure(settings, exc, signed_in=signed_in)
        finally:
            if client is not None:
                client.close()
        return _workspace_verdict(settings, [(w.id, w.name) for w in workspaces])


def _failure(settings: ConnectionSettings, exc: Exception, *, signed_in: bool) -> str:
    """The Test button's message for an error while signing in (``signed_in`` False) or listing workspaces."""
    from pbi_taskflow.errors import PermissionDeniedError, TransportError

    if isinstance(exc, TransportError):
        what, where = ("Power BI", settings.cloud.api_root) if signed_in else ("Entra ID", settings.cloud.authority_host)
        return (f"{'Signed in, but ' if signed_in else ''}{what} could not be reached at {where}. {exc} Check the "
                "network, proxy and CA bundle of the machine running Airflow, and the cloud.")
    if not signed_in:
        return f"Sign-in to Entra ID failed ({settings.auth_method} auth). {exc}"
    if isinstance(exc, PermissionDeniedError):
        return f"Signed in, but Power BI refused to list the app's workspaces. {exc}"
    return f"Signed in, but listing the workspaces failed. {exc}"


def _workspace_verdict(settings: ConnectionSettings, workspaces: list[tuple[str, str]]) -> tuple[bool, str]:
    """The Test button's verdict from the ``(id, name)`` of the workspaces the app sees."""
    who = f"app {settings.client_id}" if settings.client_id else "the managed identity"
    if not workspaces:
        return False, (
            f"Signed in as {who}, but it sees no Power BI workspace, so it cannot refresh anything. Add the app "
            "(or a security group holding it) to each workspace to refresh (Workspace > Manage access) as "
            "Contributor or Member, and check that the tenant setting 'Service principals can call Fabric public "
            "APIs' covers it."
        )
    seen = {key.lower() for pair in workspaces for key in pair}
    missing = [w for w in settings.allowed_workspaces if w.lower() not in seen]
    names = sorted(name for _, name in workspaces)
    listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    if missing:
        return False, (
            f"Signed in as {who}, but of the allowed workspaces it does not see {', '.join(repr(m) for m in missing)}"
            f" (it sees {listed}). Add the app to those workspaces, or fix Allowed workspaces."
        )
    return True, f"Connected to Power BI ({settings.cloud_name} cloud) as {who}: it sees {len(names)} workspace(s): {listed}."


__all__ = ["PowerBIHook"]
