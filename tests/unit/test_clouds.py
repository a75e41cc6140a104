"""Unit tests for sovereign-cloud presets in pbi_taskflow.client.clouds."""

from __future__ import annotations

import pytest

from pbi_taskflow.client.clouds import CLOUDS, get_cloud
from pbi_taskflow.errors import ConfigurationError


@pytest.mark.parametrize(
    ("name", "authority", "api", "scope"),
    [
        ("public", "https://login.microsoftonline.com", "https://api.powerbi.com", "https://analysis.windows.net"),
        ("usgov", "https://login.microsoftonline.com", "https://api.powerbigov.us", "https://analysis.usgovcloudapi.net"),
        ("GCC High", "https://login.microsoftonline.us", "https://api.high.powerbigov.us", "https://high.analysis."),
        ("dod", "https://login.microsoftonline.us", "https://api.mil.powerbigov.us", "https://mil.analysis."),
        ("china", "https://login.chinacloudapi.cn", "https://api.powerbi.cn", "https://analysis.chinacloudapi.cn"),
    ],
)
def test_presets_set_authority_api_and_scope_together(name: str, authority: str, api: str, scope: str) -> None:
    """Each cloud preset (and its common aliases) sets the three endpoints that must agree."""
    cloud = get_cloud(name)
    assert cloud.authority_host == authority
    assert cloud.api_root == f"{api}/v1.0/myorg"
    assert cloud.scope.startswith(scope)
    assert cloud.scope.endswith("/powerbi/api/.default")


def test_overrides_replace_single_settings() -> None:
    """Any preset value can be overridden; a bare API host gets the /v1.0/myorg path."""
    cloud = get_cloud("public", api_root="https://127.0.0.1:8443", authority_host="https://127.0.0.1:8443/")
    assert cloud.api_root == "https://127.0.0.1:8443/v1.0/myorg"
    assert cloud.authority_host == "https://127.0.0.1:8443"
    assert cloud.scope == CLOUDS["public"].scope
    assert cloud.name == "custom"


def test_unknown_cloud_lists_the_presets() -> None:
    """A misspelt cloud fails with the list of valid names."""
    with pytest.raises(ConfigurationError, match="china, public, usgov"):
        get_cloud("mars")


def test_dataset_link_points_at_the_cloud_portal() -> None:
    """Dataset links use the portal of the tenant's cloud."""
    assert get_cloud("usgov").dataset_url("g", "d") == "https://app.powerbigov.us/groups/g/datasets/d/details"
