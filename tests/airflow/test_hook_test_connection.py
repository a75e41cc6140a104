"""The connection form's Test button (``PowerBIHook.test_connection``) against the emulator: each common failure
gives ``(False, message)`` saying what failed and what to change, and never the secret."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration

WRONG_SECRET = "definitely-wrong-secret-value"


@pytest.fixture
def use_conn(emulator: Any, pbi_connection: str, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``use_conn(login=..., password=..., **extras)``: point ``powerbi_default`` at the emulator with changes."""
    from pbi_taskflow.client.auth import clear_token_caches

    def change(**fields: Any) -> None:
        conn = json.loads(emulator.airflow_conn_json())
        for key, value in fields.items():
            if key in ("login", "password"):
                conn[key] = value
            else:
                conn["extra"][key] = value
        monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
        clear_token_caches()

    return change


def _test() -> tuple[bool, str]:
    from pbi_taskflow.airflow.hook import PowerBIHook

    return PowerBIHook("powerbi_default").test_connection()  # type: ignore[no-any-return]


def test_success_names_the_workspaces(emulator: Any, use_conn: Any) -> None:
    """A working connection passes and names the cloud, the app and what it sees."""
    emulator.add_workspace("Sales")
    emulator.add_workspace("Finance")
    use_conn()
    ok, message = _test()
    assert ok, message
    assert message.startswith("Connected to Power BI (public cloud) as app ")
    assert "2 workspace(s): Finance, Sales" in message


def test_wrong_secret_says_to_store_the_secret_value(emulator: Any, use_conn: Any) -> None:
    """A wrong secret: sign-in failed, store the secret's Value (not its ID); the secret never shows."""
    emulator.add_workspace("Sales")
    use_conn(password=WRONG_SECRET)
    ok, message = _test()
    assert not ok
    assert message.startswith("Sign-in to Entra ID failed (secret auth).")
    assert "Value" in message
    assert "Secret ID" in message
    assert "AADSTS7000215" in message
    assert WRONG_SECRET not in message


def test_unknown_tenant_says_to_check_the_tenant_id(emulator: Any, use_conn: Any) -> None:
    """A tenant Entra ID does not know: the message names it and says where the right id is."""
    tenant = str(uuid.uuid4())
    use_conn(tenant_id=tenant)
    ok, message = _test()
    assert not ok
    assert message.startswith("Sign-in to Entra ID failed (secret auth).")
    assert f"Tenant {tenant} was not found" in message
    assert "Directory (tenant) ID" in message


def test_unknown_app_says_to_check_the_client_id(emulator: Any, use_conn: Any) -> None:
    """A client id with no app registration in the tenant is named as such."""
    client = str(uuid.uuid4())
    use_conn(login=client)
    ok, message = _test()
    assert not ok
    assert f"No application with client id {client}" in message


def test_no_workspace_visible_says_to_add_the_app_to_a_workspace(emulator: Any, use_conn: Any) -> None:
    """Signed in but no workspace visible: a failed test (nothing could be refreshed) saying how to grant access."""
    emulator.add_workspace("Sales", members=[str(uuid.uuid4())])  # another app's workspace only
    use_conn()
    ok, message = _test()
    assert not ok
    assert "it sees no Power BI workspace" in message
    assert "Manage access" in message


def test_allowed_workspace_not_visible_is_named(emulator: Any, use_conn: Any) -> None:
    """An allowed workspace the app cannot see fails the test and is named, with what it does see."""
    emulator.add_workspace("Sales")
    use_conn(allowed_workspaces="Sales, Marketing")
    ok, message = _test()
    assert not ok
    assert "does not see 'Marketing'" in message
    assert "(it sees Sales)" in message


def test_tenant_setting_off_says_which_admin_setting(emulator: Any, use_conn: Any) -> None:
    """Power BI refusing the workspace list (401) points at the tenant setting for service principals."""
    emulator.add_workspace("Sales")
    emulator.inject("groups", "error", status=401, count=20)
    use_conn()
    ok, message = _test()
    assert not ok
    assert message.startswith("Signed in, but Power BI refused to list the app's workspaces.")
    assert "Service principals can call Fabric public APIs" in message


def test_incomplete_connection_lists_every_missing_field(emulator: Any, use_conn: Any) -> None:
    """A connection missing its tenant and secret reports both, without any network call."""
    use_conn(password=None, tenant_id=None)
    before = len(emulator.requests)
    ok, message = _test()
    assert not ok
    assert message.startswith("The connection is incomplete.")
    assert "Missing tenant_id" in message
    assert "Missing client secret" in message
    assert len(emulator.requests) == before


def test_unreachable_api_root_names_the_host(emulator: Any, use_conn: Any) -> None:
    """Power BI unreachable (here a closed port): the message names the API root and what to check."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    use_conn(api_root=f"https://127.0.0.1:{port}", timeout=2)
    ok, message = _test()
    assert not ok
    assert f"Power BI could not be reached at https://127.0.0.1:{port}/v1.0/myorg" in message
    assert "proxy" in message
