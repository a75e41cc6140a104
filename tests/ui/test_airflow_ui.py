"""pbi_taskflow in Airflow's own UI, in a real browser, the way a person uses it.

Admin > Connections > Add Connection, type "Power BI (pbi_taskflow)": each auth method's connection is filled in
and saved through the form, read back through the REST API (secrets redacted) and from the database (what the
hook reads), and accepted by the hook. Then a person tests a connection with the Test button, runs a refresh
DAG that uses it, and finds the task's links to Power BI and its log in the task instance page.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from pbi_taskflow.airflow.provider_info import get_provider_info
from ui._flows import create_test_and_use_a_connection, emulator_extras, open_add_connection

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

ISSUER = "https://token.actions.example.test"
SUBJECT = "repo:acme/etl:ref:refs/heads/main"

_FORM = get_provider_info()["connection-types"][0]["conn-fields"]
#: The form's accordion sections in order; fields without a section are under "Extra Fields".
SECTIONS = ["Extra Fields", *dict.fromkeys(f["schema"]["section"] for f in _FORM.values() if "section" in f["schema"])]


def _section(field: str) -> str:
    return str(_FORM[field]["schema"].get("section", "Extra Fields"))


def _label(field: str, value: str) -> str:
    return str(_FORM[field]["schema"].get("values_display", {}).get(value, value))


def add_connection(page: Any, conn_id: str, *, login: str | None = None, password: str | None = None,
                   extras: dict[str, str]) -> None:
    """Admin > Connections > Add Connection: fill what a person fills, leave the rest alone, Save."""
    from playwright.sync_api import expect

    dialog = open_add_connection(page, conn_id)
    if login is not None:
        dialog.get_by_label("Client ID").fill(login)
    if password is not None:
        dialog.get_by_label("Client Secret").fill(password)
    for section in SECTIONS:  # one section is open at a time: open each, fill its fields
        fields = {k: v for k, v in extras.items() if _section(k) == section}
        if not fields:
            continue
        trigger = dialog.get_by_role("button", name=section, exact=True)
        if trigger.get_attribute("aria-expanded") != "true":
            trigger.click()
        for field, value in fields.items():
            element = dialog.locator(f"#element_{field}")
            if "enum" in _FORM[field]["schema"]:
                element.click()
                page.get_by_role("option", name=_label(field, value), exact=True).click()
            else:
                element.fill(value)
    save = dialog.get_by_role("button", name="Save")
    expect(save).to_be_enabled()
    save.click()
    expect(dialog).to_be_hidden()


def check_saved(airflow: Any, conn_id: str, filled: dict[str, str]) -> dict[str, Any]:
    """The connection as saved: REST shows it with secrets redacted; the database holds exactly what was filled,
    the drop-downs' defaults and null for every field left alone (never an empty string). Returns the stored one."""
    api = airflow.request("GET", f"/api/v2/connections/{conn_id}")
    assert api["conn_type"] == "pbi_taskflow"
    api_extra = json.loads(api["extra"])
    stored = airflow.stored_connection(conn_id)
    extra = stored["extra"]
    assert set(extra) == set(_FORM), "the form saves every one of its fields"
    for field, value in extra.items():
        expected = filled.get(field, _FORM[field]["schema"].get("default"))
        if field == "private_key" and expected is not None:
            expected = " ".join(expected.split())  # a single-line input turns pasted line breaks into spaces
        assert value == expected, field
        assert value != "", field
        if field in ("private_key", "certificate_password", "federated_token_file") and value is not None:
            assert api_extra[field] == "***", f"{field} is not redacted by the API"
        else:
            assert api_extra[field] == value, field
    if stored["password"]:
        assert api["password"] == "***"
    return stored


def _settings(stored: dict[str, Any]) -> Any:
    from pbi_taskflow.client.settings import ConnectionSettings

    return ConnectionSettings.from_mapping(stored, conn_id=stored["conn_id"])


def test_client_secret_connection(page: Any, airflow_ui: Any, pbi_emulator: Any) -> None:
    """Client ID, secret and tenant (plus the emulator's hosts): saved, read back and signing in."""
    extras = emulator_extras(pbi_emulator)
    add_connection(page, "pbi_secret", login=pbi_emulator.client_id, password=pbi_emulator.client_secret,
                   extras=extras)
    stored = check_saved(airflow_ui, "pbi_secret", extras)
    assert stored["password"] == pbi_emulator.client_secret
    settings = _settings(stored)
    assert (settings.auth_method, settings.cloud_name) == ("secret", "public")
    assert settings.build_credential().get_token().token


def test_certificate_connection(page: Any, airflow_ui: Any, pbi_emulator: Any) -> None:
    """A pasted PEM (key and certificate) and its password: saved redacted, and signing in with the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pbi-ui-test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(b"pem-pass")).decode()
    client = str(uuid.uuid4())
    pbi_emulator.add_app(client, certificate_pem=cert_pem)
    extras = {**emulator_extras(pbi_emulator), "auth_method": "certificate", "private_key": key_pem + cert_pem,
              "certificate_password": "pem-pass"}
    add_connection(page, "pbi_certificate", login=client, extras=extras)
    stored = check_saved(airflow_ui, "pbi_certificate", extras)
    settings = _settings(stored)
    assert settings.auth_method == "certificate"
    assert settings.build_credential().get_token().token


def test_federated_connection(page: Any, airflow_ui: Any, pbi_emulator: Any, tmp_path: Path) -> None:
    """A workload-identity token file: saved and signing in with the federated assertion."""
    client = str(uuid.uuid4())
    pbi_emulator.add_app(client, federated=[{"issuer": ISSUER, "subject": SUBJECT}])
    token_file = tmp_path / "federated-token"
    token_file.write_text(pbi_emulator.issue_federated_token(subject=SUBJECT, issuer=ISSUER))
    extras = {**emulator_extras(pbi_emulator), "auth_method": "federated", "federated_token_file": str(token_file)}
    add_connection(page, "pbi_federated", login=client, extras=extras)
    stored = check_saved(airflow_ui, "pbi_federated", extras)
    settings = _settings(stored)
    assert settings.auth_method == "federated"
    assert settings.build_credential().get_token().token


def test_managed_identity_connection(page: Any, airflow_ui: Any) -> None:
    """Managed identity in the US Government cloud: no client id, secret or tenant needed; the hook accepts it."""
    client = str(uuid.uuid4())
    extras = {"auth_method": "managed_identity", "managed_identity_client_id": client, "cloud": "usgov"}
    add_connection(page, "pbi_managed_identity", extras=extras)
    stored = check_saved(airflow_ui, "pbi_managed_identity", extras)
    assert stored["login"] is None
    assert stored["password"] is None
    settings = _settings(stored)
    assert (settings.auth_method, settings.managed_identity_client_id) == ("managed_identity", client)
    assert settings.cloud.api_root == "https://api.powerbigov.us/v1.0/myorg"
    assert type(settings.build_credential()).__name__ == "ManagedIdentityCredential"


def test_create_test_and_use_a_connection_in_the_ui(page: Any, airflow_ui: Any, pbi_emulator: Any) -> None:
    """A person adds the connection, tests it (and a wrong one), runs a refresh DAG, and opens Power BI from it.

    The connection list offers its Test button for both connections. Airflow 3.3's button posts ``port: 0`` for a
    connection without a port (``Number(null)``), which the API server refuses ("Bad Request") for every
    connection type that hides the port. So the test's message is asked the way the button would with the port
    left unset: the same endpoint, the same hook, in the API server.
    """
    from playwright.sync_api import expect

    create_test_and_use_a_connection(page, airflow_ui, pbi_emulator, add_connection)
    page.goto("/connections")
    for conn_id in ("powerbi_ui", "powerbi_wrong"):
        row = page.get_by_role("row").filter(has_text=conn_id)
        expect(row.get_by_role("button", name="Test Connection", exact=True)).to_be_enabled()
