"""Sovereign-cloud presets: Entra authority host, Power BI API root, token scope and portal."""

from __future__ import annotations

import dataclasses

from pbi_taskflow.errors import ConfigurationError


@dataclasses.dataclass(frozen=True)
class Cloud:
    """Where a Power BI tenant lives.

    :param name: preset name (``public``, ``usgov``, ``usgovhigh``, ``usgovdod``, ``china``) or ``custom``.
    :param authority_host: Entra ID host, e.g. ``https://login.microsoftonline.com``.
    :param api_root: Power BI REST root including ``/v1.0/myorg``.
    :param scope: the app-only ``.default`` scope for Power BI.
    :param portal_url: the Power BI web portal, for links to datasets.
    """

    name: str
    authority_host: str
    api_root: str
    scope: str
    portal_url: str

    def dataset_url(self, workspace_id: str, dataset_id: str) -> str:
        """Link to a dataset's page in the Power BI portal."""
        return f"{self.portal_url.rstrip('/')}/groups/{workspace_id}/datasets/{dataset_id}/details"

    def dataflow_url(self, workspace_id: str, dataflow_id: str) -> str:
        """Link to a dataflow's page in the Power BI portal."""
        return f"{self.portal_url.rstrip('/')}/groups/{workspace_id}/dataflows/{dataflow_id}"


def _preset(name: str, login: str, api: str, analysis: str, portal: str) -> Cloud:
    return Cloud(
        name=name,
        authority_host=f"https://{login}",
        api_root=f"https://{api}/v1.0/myorg",
        scope=f"https://{analysis}/powerbi/api/.default",
        portal_url=f"https://{portal}",
    )


CLOUDS: dict[str, Cloud] = {
    "public": _preset("public", "login.microsoftonline.com", "api.powerbi.com", "analysis.windows.net", "app.powerbi.com"),
    "usgov": _preset(
        "usgov", "login.microsoftonline.com", "api.powerbigov.us", "analysis.usgovcloudapi.net", "app.powerbigov.us"
    ),
    "usgovhigh": _preset(
        "usgovhigh",
        "login.microsoftonline.us",
        "api.high.powerbigov.us",
        "high.analysis.usgovcloudapi.net",
        "app.high.powerbigov.us",
    ),
    "usgovdod": _preset(
        "usgovdod",
        "login.microsoftonline.us",
        "api.mil.powerbigov.us",
        "mil.analysis.usgovcloudapi.net",
        "app.mil.powerbigov.us",
    ),
    "china": _preset("china", "login.chinacloudapi.cn", "api.powerbi.cn", "analysis.chinacloudapi.cn", "app.powerbi.cn"),
}

_ALIASES = {
    "commercial": "public",
    "azurecloud": "public",
    "gcc": "usgov",
    "usgovernment": "usgov",
    "gcchigh": "usgovhigh",
    "dodcon": "usgovhigh",
    "dod": "usgovdod",
    "21vianet": "china",
    "azurechinacloud": "china",
}


def get_cloud(
    name: str | None = "public",
    *,
    authority_host: str | None = None,
    api_root: str | None = None,
    scope: str | None = None,
    portal_url: str | None = None,
) -> Cloud:
    """Return a cloud preset by name, with any of its settings overridden.

    :raises ConfigurationError: for an unknown preset name.
    """
    key = (name or "public").strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    key = _ALIASES.get(key, key)
    if key not in CLOUDS:
        known = ", ".join(sorted(CLOUDS))
        msg = f"Unknown Power BI cloud {name!r}. Expected one of: {known} (or override authority_host, api_root and scope)."
        raise ConfigurationError(msg)
    base = CLOUDS[key]
    overrides = {"authority_host": authority_host, "api_root": api_root, "scope": scope, "portal_url": portal_url}
    changes = {k: v.rstrip("/") for k, v in overrides.items() if v}
    if api_root and not api_root.rstrip("/").endswith("/v1.0/myorg"):
        changes["api_root"] = api_root.rstrip("/") + "/v1.0/myorg"
    if not changes:
        return base
    return dataclasses.replace(base, name=base.name if set(changes) == {"portal_url"} else "custom", **changes)
