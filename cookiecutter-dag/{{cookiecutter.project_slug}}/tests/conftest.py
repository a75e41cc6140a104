"""Fixtures for the {{ cookiecutter.dag_id }} tests (the generic ones come from the pbi_taskflow plugin)."""

from __future__ import annotations

import re
{%- if cookiecutter.alert_channel != "none" %}
from collections.abc import Callable
{%- endif %}
from pathlib import Path
from typing import Any

import pytest
import yaml
from pbi_taskflow.testing import DagPolicy

PROJECT = Path(__file__).resolve().parent.parent
DAG_ID = {{ cookiecutter.dag_id | tojson }}
CONN_ID = {{ cookiecutter.conn_id | tojson }}
{%- if cookiecutter.upstream_dataflows.strip() %}
# The dataflows the datasets read in Power BI. The DAG finds them from the lineage; the emulator needs them seeded.
UPSTREAM_DATAFLOWS = {{ cookiecutter.upstream_dataflows.split(",") | map("trim") | list | tojson }}
{%- endif %}
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@pytest.fixture
def dag_policy() -> DagPolicy:
    """The checks every DAG in dags/ must pass (used by the dag_bag fixture)."""
    return DagPolicy(require_owner=True, require_tags=True, min_retries=1, require_failure_alert={{ "False" if cookiecutter.alert_channel == "none" else "True" }})


@pytest.fixture
def config() -> dict[str, Any]:
    """config/powerbi.yaml."""
    return yaml.safe_load((PROJECT / "config" / "powerbi.yaml").read_text(encoding="utf-8"))


def _name_and_id(value: str, kind: str) -> tuple[str, str | None]:
    return (f"{kind} {value[:8]}", value) if GUID.match(value) else (value, None)


@pytest.fixture
def dataset_names(config) -> list[str]:
    """The names the emulator gives the configured datasets (an id becomes "Dataset <first 8 digits>")."""
    return [_name_and_id(str(item["name"]), "Dataset")[0] for item in config["datasets"]]


{%- if cookiecutter.upstream_dataflows.strip() %}


@pytest.fixture
def dataflow_names() -> list[str]:
    """The names the emulator gives the upstream dataflows (an id becomes "Dataflow <first 8 digits>")."""
    return [_name_and_id(value, "Dataflow")[0] for value in UPSTREAM_DATAFLOWS]
{%- endif %}


@pytest.fixture
def powerbi(emulator, pbi_connection, config, monkeypatch):
    """The local Power BI emulator holding the workspace and datasets of config/powerbi.yaml
    {%- if cookiecutter.upstream_dataflows.strip() %}, and the
    upstream dataflows every dataset reads (edit the links to match your lineage){% endif %}.

    The DAG's connection points at it, so the DAG runs unchanged and offline.
    """
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emulator.airflow_conn_json())
    workspace_name, workspace_id = _name_and_id(str(config["workspace"]), "Workspace")
    workspace = emulator.add_workspace(workspace_name, id=workspace_id)
{%- if cookiecutter.upstream_dataflows.strip() %}
    dataflows = []
    for value in UPSTREAM_DATAFLOWS:
        name, dataflow_id = _name_and_id(value, "Dataflow")
        dataflows.append(emulator.add_dataflow(workspace["id"], name, id=dataflow_id, duration=0.2)["id"])
{%- endif %}
    for item in config["datasets"]:
        name, dataset_id = _name_and_id(str(item["name"]), "Dataset")
        {% if cookiecutter.upstream_dataflows.strip() %}dataset = {% endif %}emulator.add_dataset(workspace["id"], name, id=dataset_id, duration=0.2)
{%- if cookiecutter.upstream_dataflows.strip() %}
        emulator.link_dataset(workspace["id"], dataset["id"], dataflows)
{%- endif %}
    return emulator
{%- if cookiecutter.alert_channel in ("teams", "slack") %}


@pytest.fixture
def alert_inbox(webhook_receiver, monkeypatch) -> Callable[[int], list[str]]:
    """Alerts go to a local webhook standing in for {{ "Teams" if cookiecutter.alert_channel == "teams" else "Slack" }}; call it to get the received texts."""
    monkeypatch.setenv("AIRFLOW_CONN_{{ cookiecutter.alert_target.strip().upper() }}", webhook_receiver.airflow_conn_json())

    def received(count: int = 1) -> list[str]:
        webhook_receiver.wait_for(count, timeout=10)
        return [post.text for post in webhook_receiver.delivered]

    return received
{%- elif cookiecutter.alert_channel == "email" %}


@pytest.fixture
def alert_inbox(smtp_receiver, monkeypatch) -> Callable[[int], list[str]]:
    """Alerts go to a local SMTP server; call it to get the plain-text bodies of the received emails."""
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_receiver.airflow_conn_json())

    def received(count: int = 1) -> list[str]:
        smtp_receiver.wait_for(count, timeout=10)
        return [m.get_body(preferencelist=("plain", "html")).get_content() for m in smtp_receiver.messages]

    return received
{%- endif %}
