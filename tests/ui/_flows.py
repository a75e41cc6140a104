"""What a person does in Airflow's UI the same way on every Airflow 3 release tested.

Open the Add Connection dialog for the Power BI type, ask the API server to test a saved connection, run a
refresh DAG, then find the task's log summary and its Extra Links to Power BI in the task instance page. How the
connection form is filled differs between releases: each test module passes its own ``add_connection``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from typing import Any

DAG_ID = "ui_refresh"
#: A refresh DAG using the connection ``powerbi_ui``, with the emulator's workspace "Sales" and model "Revenue".
DAG_FILE = '''
from __future__ import annotations
import datetime as dt
from airflow.sdk import dag
from pbi_taskflow import powerbi_refresh

@dag(schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False)
def ui_refresh():
    @powerbi_refresh(conn_id="powerbi_ui", workspace="Sales", poll_interval=0.2, max_poll_interval=1)
    def refresh():
        return "Revenue"

    refresh()

ui_refresh()
'''


def emulator_extras(emulator: Any) -> dict[str, str]:
    """The extras pointing a connection at the emulator's tenant, hosts and CA."""
    return {"tenant_id": emulator.tenant_id, "api_root": emulator.api_root, "authority_host": emulator.authority_host,
            "ca_bundle": emulator.ca_bundle}


def open_add_connection(page: Any, conn_id: str) -> Any:
    """Admin > Connections > Add Connection, the id typed and the type "Power BI (pbi_taskflow)" chosen: the dialog."""
    page.goto("/connections")
    page.wait_for_load_state("networkidle")
    if not page.url.endswith("/connections"):  # Airflow 3.1's first visit signs in and lands on the home page
        page.goto("/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(conn_id)
    dialog.get_by_role("combobox").fill("Power BI")
    page.get_by_role("option", name="Power BI (pbi_taskflow)").click()
    return dialog


def connection_test_message(airflow: Any, conn_id: str) -> str:
    """``"<status>: <message>"`` of the connection test the API server runs on the saved connection, with no port
    (``POST /api/v2/connections/test``, what the UI's Test button and ``airflow connections test`` ask)."""
    stored = airflow.stored_connection(conn_id)
    body = {"connection_id": conn_id, "conn_type": stored["conn_type"], "login": stored["login"],
            "password": stored["password"], "extra": json.dumps(stored["extra"])}
    answer = airflow.request("POST", "/api/v2/connections/test", body)
    return f"{answer['status']}: {answer['message']}"


def check_connection_tests(airflow: Any, good: str, wrong_secret: str) -> None:
    """The test passes for a right connection and names the failure, without the secret, for a wrong secret."""
    message = connection_test_message(airflow, good)
    assert message.startswith("True: Connected to Power BI (public cloud) as app ")
    assert message.endswith("it sees 1 workspace(s): Sales.")
    message = connection_test_message(airflow, wrong_secret)
    assert message.startswith("False: Sign-in to Entra ID failed (secret auth).")
    assert airflow.stored_connection(wrong_secret)["password"] not in message


def run_refresh_and_open_power_bi(page: Any, airflow: Any) -> None:
    """The refresh DAG runs; its task's log shows the summary with the model's portal link, and its Details tab
    the Extra Links buttons to the model and the workspace."""
    (airflow.home / "dags" / f"{DAG_ID}.py").write_text(textwrap.dedent(DAG_FILE))
    run_id, state = airflow.run_dag(DAG_ID)
    assert state == "success", airflow.log_tail("scheduler")
    [record] = airflow.request(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/refresh/xcomEntries/return_value",
    )["value"]
    workspace_url = f"https://app.powerbi.com/groups/{record['workspace_id']}/list"
    assert record["web_url"] == (
        f"https://app.powerbi.com/groups/{record['workspace_id']}/datasets/{record['dataset_id']}/details"
    )

    page.goto(f"/dags/{DAG_ID}/runs/{run_id}/tasks/refresh")  # opens on the task's log
    page.get_by_text("Open in Power BI:").first.wait_for()
    page.get_by_text("Sales / Revenue:").first.wait_for()
    assert page.locator(f'a[href="{record["web_url"]}"]').count() >= 1, "the log's portal link is not a link"
    page.goto(f"/dags/{DAG_ID}/runs/{run_id}/tasks/refresh/details")  # the Details tab holds the buttons
    model = page.get_by_role("link", name="Power BI semantic model")
    model.wait_for()
    assert model.get_attribute("href") == record["web_url"]
    assert page.get_by_role("link", name="Power BI workspace").get_attribute("href") == workspace_url


def create_test_and_use_a_connection(page: Any, airflow: Any, emulator: Any,
                                     add_connection: Callable[..., None]) -> None:
    """A person adds the connection ``powerbi_ui`` (and one with a wrong secret) with ``add_connection(page,
    conn_id, login=, password=, extras=)``, tests both, runs the refresh DAG and opens Power BI from its task."""
    emulator.add_workspace("Sales")
    emulator.add_dataset("Sales", "Revenue", duration=1.0)
    extras = emulator_extras(emulator)
    add_connection(page, "powerbi_ui", login=emulator.client_id, password=emulator.client_secret, extras=extras)
    add_connection(page, "powerbi_wrong", login=emulator.client_id, password="not-the-secret-value", extras=extras)
    check_connection_tests(airflow, "powerbi_ui", "powerbi_wrong")
    run_refresh_and_open_power_bi(page, airflow)
