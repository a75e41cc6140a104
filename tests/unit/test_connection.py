"""Unit tests for pbi_taskflow.airflow.connection and pbi_taskflow.airflow.hook: Airflow connection fields -> settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pbi_taskflow.airflow.connection import settings_from_connection
from pbi_taskflow.errors import ConfigurationError

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"


class _Conn:
    """The attributes of an Airflow Connection that the mapping reads."""

    def __init__(self, *, login: str | None, password: str | None, extra: Any, conn_type: str = "pbi_taskflow") -> None:
        self.conn_id = "powerbi_test"
        self.conn_type = conn_type
        self.login = login
        self.password = password
        self.extra = json.dumps(extra) if isinstance(extra, dict) else extra


def test_plain_extras_map_to_settings() -> None:
    """Login, password and plain extra keys become the settings; the secret stays out of the repr."""
    conn = _Conn(login=CLIENT, password="s3cret-value", extra={
        "tenant_id": TENANT, "cloud": "usgov", "allowed_workspaces": "Sales, Finance", "timeout": 30,
    })
    settings = settings_from_connection(conn)
    assert (settings.tenant_id, settings.client_id, settings.client_secret) == (TENANT, CLIENT, "s3cret-value")
    assert settings.allowed_workspaces == ("Sales", "Finance")
    assert settings.cloud.api_root == "https://api.powerbigov.us/v1.0/myorg"
    assert settings.conn_id == "powerbi_test"
    assert "s3cret-value" not in repr(settings)


def test_ui_prefixed_extras_are_accepted() -> None:
    """Extras written by the UI form (extra__pbi_taskflow__<name>) are read like plain ones."""
    conn = _Conn(login=CLIENT, password=None, extra={
        "extra__pbi_taskflow__tenant_id": TENANT,
        "extra__pbi_taskflow__auth_method": "federated",
        "extra__pbi_taskflow__federated_token_file": "/var/run/token",
    })
    settings = settings_from_connection(conn)
    assert (settings.auth_method, settings.federated_token_file) == ("federated", "/var/run/token")


def test_missing_tenant_names_the_connection() -> None:
    """A missing tenant id fails naming the connection and the field to set."""
    with pytest.raises(ConfigurationError, match="tenant_id") as info:
        settings_from_connection(_Conn(login=CLIENT, password="x", extra={}))
    assert "powerbi_test" in str(info.value)


def test_invalid_extra_json_is_a_clear_error() -> None:
    """Extra that is not JSON fails with a message saying so."""
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        settings_from_connection(_Conn(login=CLIENT, password="x", extra="{not json"))


def test_secrets_are_registered_with_the_masker(mocker: Any) -> None:
    """The client secret and certificate are handed to Airflow's secret masker."""
    masked: list[str] = []
    fake = type("Masker", (), {"mask_secret": staticmethod(masked.append), "redact": staticmethod(str)})
    mocker.patch("pbi_taskflow.observability.redact.masker", return_value=fake)
    settings_from_connection(_Conn(login=CLIENT, password="s3cret-value", extra={"tenant_id": TENANT}))
    assert "s3cret-value" in masked


def test_hook_metadata_matches_provider_info() -> None:
    """The hook declares the connection type, default conn id and name the provider registers."""
    from pbi_taskflow.airflow.hook import PowerBIHook
    from pbi_taskflow.airflow.provider_info import get_provider_info

    [conn_type] = get_provider_info()["connection-types"]
    assert PowerBIHook.conn_type == conn_type["connection-type"] == "pbi_taskflow"
    assert PowerBIHook.hook_name == conn_type["hook-name"]
    assert PowerBIHook.default_conn_name == "powerbi_default"
    assert conn_type["hook-class-name"] == f"{PowerBIHook.__module__}.{PowerBIHook.__qualname__}"
