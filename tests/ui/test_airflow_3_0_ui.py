"""pbi_taskflow in the UI of Airflow 3.0 and 3.1, in a real browser, the way a person uses it.

Before 3.2 Airflow does not render the provider's connection form fields (``conn-fields``): for this connection
type the form shows the standard fields (Login = client ID, Password = client secret; Host, Schema and Port are
ignored) and the Extra Fields JSON editor, where a person pastes the extras. Each auth method's connection is
filled in that way and saved, read back through the REST API (secrets redacted) and from the database, and
read by the hook through Airflow's own connection lookup. Then a refresh DAG using such a connection runs, and
the task's log and Extra Links lead to Power BI. On Airflow 3.2 and later, test_airflow_ui.py covers the form.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from unit._pbi_certs import self_signed

from ui._airflow import AIRFLOW_VERSION, PROVIDER_FORM
from ui._flows import create_test_and_use_a_connection, emulator_extras, open_add_connection

pytestmark = [
    pytest.mark.integration, pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(PROVIDER_FORM, reason=(
        f"Airflow {'.'.join(map(str, AIRFLOW_VERSION))} renders the provider's own connection form fields "
        "(from 3.2 on), tested by test_airflow_ui.py; this module tests the form of Airflow 3.0 and 3.1"
    )),
]

ISSUER = "https://token.actions.example.test"
SUBJECT = "repo:acme/etl:ref:refs/heads/main"
#: Extras whose values Airflow shows as ``***`` (by key name: "private_key", "password", "token").
REDACTED = ("private_key", "certificate_password", "federated_token_file")


def add_connection(page: Any, conn_id: str, *, login: str | None = None, password: str | None = None,
                   extras: dict[str, Any]) -> None:
    """Admin > Connections > Add Connection: Login, Password, the extras pasted as JSON, Save."""
    from playwright.sync_api import expect

    dialog = open_add_connection(page, conn_id)
    # The form of this version: the standard fields, unlabelled for Power BI, and no provider fields.
    for standard in ("Host", "Login", "Password", "Port", "Schema"):
        expect(dialog.get_by_label(standard, exact=True)).to_be_visible()
    expect(dialog.get_by_label("Client ID")).to_have_count(0)
    expect(dialog.get_by_label("Tenant ID")).to_have_count(0)
    if login is not None:
        dialog.get_by_label("Login", exact=True).fill(login)
    if password is not None:
        dialog.get_by_label("Password", exact=True).fill(password)
    dialog.get_by_role("button", name="Extra Fields JSON").click()
    editor = dialog.locator(".cm-content")
    expect(editor).to_have_text("{}")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(extras, indent=2))  # as pasted: no auto-closed brackets
    # Leaving the editor hands the JSON to the form, which then lists its keys under "Extra Fields" (and moves
    # the Save button: a click on Save straight from the editor only leaves the editor).
    dialog.get_by_role("heading", name="Add Connection").click()
    expect(dialog.get_by_role("button", name="Extra Fields", exact=True)).to_be_visible()
    save = dialog.get_by_role("button", name="Save")
    expect(save).to_be_enabled()
    save.click()
    expect(dialog).to_be_hidden()


def check_saved(airflow: Any, conn_id: str, *, login: str | None, password: str | None,
                extra: dict[str, Any]) -> dict[str, Any]:
    """REST shows the connection with its secrets redacted and the ignored standard fields unset; the database
    holds exactly the login, password and extras given, none of them an empty string. Returns the stored one."""
    api = airflow.request("GET", f"/api/v2/connections/{conn_id}")
    assert api["conn_type"] == "pbi_taskflow"
    assert api["login"] == login
    assert api["password"] == ("***" if password else None)
    assert (api["host"], api["schema"], api["port"], api["description"]) == (None, None, None, None)
    assert json.loads(api["extra"]) == {k: "***" if k in REDACTED else v for k, v in extra.items()}
    stored = airflow.stored_connection(conn_id)
    assert (stored["login"], stored["password"], stored["extra"]) == (login, password, extra)
    assert "" not in stored["extra"].values()
    return stored


def saved_settings(page: Any, airflow: Any, monkeypatch: pytest.MonkeyPatch, conn_id: str, *,
                   login: str | None = None, password: str | None = None, extra: dict[str, Any]) -> Any:
    """Add the connection in the form, check what was saved, and return the settings the hook of a task reads
    from it (through Airflow's own connection lookup)."""
    from pbi_taskflow.hook import PowerBIHook

    add_connection(page, conn_id, login=login, password=password, extras=extra)
    stored = check_saved(airflow, conn_id, login=login, password=password, extra=extra)
    conn = {"conn_type": stored["conn_type"], "login": login, "password": password, "extra": stored["extra"]}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return PowerBIHook(conn_id).get_settings()


# airflow_home: the hook reads the connection through an Airflow configured for the test session, not ~/airflow.
@pytest.mark.usefixtures("airflow_home")
def test_client_secret_connection(page: Any, airflow_ui: Any, pbi_emulator: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Login, Password and the tenant (plus the emulator's hosts) as JSON: saved, read back and signing in."""
    settings = saved_settings(page, airflow_ui, monkeypatch, "pbi_secret", login=pbi_emulator.client_id,
                              password=pbi_emulator.client_secret, extra=emulator_extras(pbi_emulator))
    assert (settings.auth_method, settings.cloud_name) == ("secret", "public")
    assert settings.build_credential().get_token().token


@pytest.mark.usefixtures("airflow_home")
def test_certificate_connection(page: Any, airflow_ui: Any, pbi_emulator: Any,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An encrypted PEM (key and certificate) in the JSON, line breaks as \\n: saved redacted, signing in."""
    key_pem, cert_pem = self_signed(b"pem-pass")
    client = str(uuid.uuid4())
    pbi_emulator.add_app(client, certificate_pem=cert_pem)
    extra = {**emulator_extras(pbi_emulator), "auth_method": "certificate", "private_key": key_pem + cert_pem,
             "certificate_password": "pem-pass"}
    settings = saved_settings(page, airflow_ui, monkeypatch, "pbi_certificate", login=client, extra=extra)
    assert settings.auth_method == "certificate"
    assert settings.build_credential().get_token().token


@pytest.mark.usefixtures("airflow_home")
def test_federated_connection(page: Any, airflow_ui: Any, pbi_emulator: Any, monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path) -> None:
    """A workload-identity token file: saved (its path redacted) and signing in with the federated assertion."""
    client = str(uuid.uuid4())
    pbi_emulator.add_app(client, federated=[{"issuer": ISSUER, "subject": SUBJECT}])
    token_file = tmp_path / "federated-token"
    token_file.write_text(pbi_emulator.issue_federated_token(subject=SUBJECT, issuer=ISSUER))
    extra = {**emulator_extras(pbi_emulator), "auth_method": "federated", "federated_token_file": str(token_file)}
    settings = saved_settings(page, airflow_ui, monkeypatch, "pbi_federated", login=client, extra=extra)
    assert settings.auth_method == "federated"
    assert settings.build_credential().get_token().token


@pytest.mark.usefixtures("airflow_home")
def test_managed_identity_connection(page: Any, airflow_ui: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Managed identity in the US Government cloud: nothing in the standard fields; the hook accepts it."""
    client = str(uuid.uuid4())
    extra = {"auth_method": "managed_identity", "managed_identity_client_id": client, "cloud": "usgov"}
    settings = saved_settings(page, airflow_ui, monkeypatch, "pbi_managed_identity", extra=extra)
    assert (settings.auth_method, settings.managed_identity_client_id) == ("managed_identity", client)
    assert settings.cloud.api_root == "https://api.powerbigov.us/v1.0/myorg"
    assert type(settings.build_credential()).__name__ == "ManagedIdentityCredential"


def test_create_test_and_use_a_connection_in_the_ui(page: Any, airflow_ui: Any, pbi_emulator: Any) -> None:
    """A person adds the connection as JSON, tests it (and a wrong one: 3.0's UI has no Test button, the REST API
    and ``airflow connections test`` have), runs a refresh DAG, and opens Power BI from its task."""
    create_test_and_use_a_connection(page, airflow_ui, pbi_emulator, add_connection)
