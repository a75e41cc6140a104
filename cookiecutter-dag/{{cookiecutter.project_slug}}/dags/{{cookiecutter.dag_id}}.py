{%- set schedule = cookiecutter.schedule.strip() -%}
{%- set notifier = {"teams": "TeamsNotifier", "slack": "SlackNotifier", "email": "EmailNotifier"}.get(cookiecutter.alert_channel) -%}
{%- set chain = cookiecutter.upstream_dataflows.strip() != "" -%}
"""{{ cookiecutter.project_name }}: extract, transform, then refresh the Power BI datasets the new data touched.
{%- if chain %}

The refresh task also refreshes the dataflows those datasets read (their upstream lineage in Power BI), upstream
first: each dataset starts after every dataflow it reads completed, and is skipped when one of them failed.
{%- endif %}

Power BI settings (workspace, datasets, tables, refresh options) live in ``config/powerbi.yaml``, versioned
with this file. It is read when the tasks run, never while Airflow parses this file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task
from pbi_taskflow import Refresh, powerbi_refresh
{%- if notifier %}
from pbi_taskflow.alerts import {{ notifier }}
{%- endif %}

CONFIG_FILE = Path(__file__).resolve().parent.parent / "config" / "powerbi.yaml"
{%- if cookiecutter.alert_channel == "email" %}

# Alerts go through the Airflow SMTP connection ``smtp_default``.
ALERT = {{ notifier }}(to={{ cookiecutter.alert_target.strip() | tojson }}, conn_id="smtp_default")
{%- elif notifier %}

# The webhook URL is kept in the Airflow connection {{ cookiecutter.alert_target.strip() | tojson }} (never in code).
ALERT = {{ notifier }}(conn_id={{ cookiecutter.alert_target.strip() | tojson }})
{%- endif %}


def load_config() -> dict[str, Any]:
    """The Power BI settings of this DAG (read at task run time)."""
    import yaml

    with CONFIG_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@dag(
    dag_id={{ cookiecutter.dag_id | tojson }},
    {%- if schedule in ("None", "none", "null", "") %}
    schedule=None,
    {%- else %}
    schedule={{ schedule | tojson }},
    {%- endif %}
    {%- if schedule == "@continuous" %}
    max_active_runs=1,  # a continuous schedule allows one run at a time
    {%- endif %}
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["powerbi", {{ cookiecutter.project_slug | tojson }}],
    default_args={
        "owner": {{ cookiecutter.owner.strip() | tojson }},
        "retries": 2,
        {%- if notifier %}
        "on_failure_callback": [ALERT],
        {%- endif %}
    },
)
def {{ cookiecutter.dag_id }}() -> None:
    @task
    def extract() -> dict[str, Any]:
        """Load the new data from your sources; replace this with your extraction."""
        return {"orders": 120, "stock": 45}

    @task
    def transform(rows: dict[str, Any]) -> list[str]:
        """Transform the data; return the names of the source tables that changed."""
        return [source for source, count in rows.items() if count]

    @powerbi_refresh(conn_id={{ cookiecutter.conn_id | tojson }}{% if cookiecutter.deferrable == "yes" %}, deferrable=True{% endif %}{% if chain %}, upstream="refresh"{% endif %})
    def refresh(changed_sources: list[str]) -> list[Refresh]:
        """Refresh the datasets fed by a changed source (all datasets when a dataset lists no sources)
        {%- if chain %}, each
        after the dataflows it reads (upstream="refresh" finds and refreshes them){% endif %}."""
        config = load_config()
        workspace = config["workspace"]
        options = config.get("refresh_options") or {}
        return [
            Refresh(item["name"], workspace, tables=item.get("tables") or None, **options)
            for item in config["datasets"]
            if not item.get("sources") or set(item["sources"]) & set(changed_sources)
        ]

    refresh(transform(extract()))


{{ cookiecutter.dag_id }}()
