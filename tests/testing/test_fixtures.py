"""The plugin's environment, emulator, connection and clean_env fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def test_airflow_home_is_isolated_and_migrated(airflow_home):
    """AIRFLOW_HOME points at a temporary directory whose SQLite database has the metadata tables."""
    import sqlite3

    assert Path(os.environ["AIRFLOW_HOME"]) == airflow_home
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{airflow_home / 'airflow.db'}"
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    tables = {row[0] for row in sqlite3.connect(airflow_home / "airflow.db").execute("select name from sqlite_master")}
    assert {"dag_run", "task_instance", "xcom"} <= tables


@pytest.mark.integration
def test_emulator_fixture_is_the_reset_session_emulator(emulator, pbi_emulator):
    """`emulator` is the session emulator with no workspaces and an empty request log."""
    assert emulator is pbi_emulator
    assert emulator.count() == 0
    emulator.add_workspace("Scratch")
    emulator.reset()
    assert emulator.count() == 0


@pytest.mark.integration
def test_pbi_connection_points_airflow_at_the_emulator(pbi_connection, emulator):
    """The connection env var holds the emulator's coordinates and never changes the conn id."""
    assert pbi_connection == "powerbi_default"
    conn = json.loads(os.environ["AIRFLOW_CONN_POWERBI_DEFAULT"])
    assert conn["conn_type"] == "pbi_taskflow"
    assert conn["extra"]["api_root"] == emulator.api_root
    assert "127.0.0.1" in os.environ["NO_PROXY"].split(",")


@pytest.mark.integration
def test_pbi_connection_makes_requests_trust_the_emulator_despite_requests_ca_bundle(
    monkeypatch, request, pbi_emulator
):
    """With REQUESTS_CA_BUNDLE set, MSAL and requests still verify the emulator's certificate (and public CAs)."""
    import msal
    import requests

    from pbi_taskflow.testing.certs import system_ca_file

    system = system_ca_file()
    assert system is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", system)
    request.getfixturevalue("pbi_connection")
    emulator = request.getfixturevalue("emulator")
    emulator.add_workspace("Sales")
    app = msal.ConfidentialClientApplication(
        emulator.client_id,
        client_credential=emulator.client_secret,
        authority=emulator.authority,
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(scopes=[emulator.scope])
    assert "access_token" in token, token.get("error_description")
    response = requests.get(
        f"{emulator.api_root}/groups", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10
    )
    assert response.status_code == 200
    assert [g["name"] for g in response.json()["value"]] == ["Sales"]
    assert Path(os.environ["REQUESTS_CA_BUNDLE"]).read_text().count("BEGIN CERTIFICATE") > 1


@pytest.mark.integration
@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_starts_without_cached_tokens(pbi_connection, emulator, attempt):
    """Whatever ran before, a client in this test fetches its own token from the emulator."""
    from pbi_taskflow.client.settings import ConnectionSettings

    emulator.add_workspace("Sales")
    with ConnectionSettings.from_mapping(emulator.airflow_conn()).build_client() as client:
        assert [w.name for w in client.list_workspaces()] == ["Sales"]
    assert emulator.count("token") == 1


def test_clean_env_clears_azure_and_proxy_variables_and_retry_sleeps(monkeypatch, request):
    """clean_env removes AZURE_* and proxy variables and turns retry waits off for the test."""
    from pbi_taskflow.client import retry
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-a-real-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("no_proxy", "example.com")
    request.getfixturevalue("clean_env")
    assert "AZURE_CLIENT_SECRET" not in os.environ
    assert "HTTPS_PROXY" not in os.environ
    assert "no_proxy" not in os.environ
    assert retry.is_testing()
