"""Refresh only the Power BI models whose source tables changed, skipping those refreshed in the last hour.

The ETL task reports which warehouse tables it loaded. The ``@powerbi_refresh`` task maps them to
the semantic models that read them, asks Power BI when each model last refreshed, and returns the
models to refresh; pbi_taskflow resolves their names, starts the refreshes, waits for them in the
triggerer, and records one asset event per refreshed model.

Connection: an Airflow connection ``powerbi_default`` of type ``pbi_taskflow`` (see the README).
Try it: ``airflow dags test refresh_changed_models -c '{"changed_tables": ["sales.orders"]}'``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from pbi_taskflow import powerbi_context, powerbi_refresh

#: Which semantic model reads which warehouse tables. Keep it in version control next to the DAG.
MODELS: dict[str, list[str]] = {
    "Sales Analytics": ["sales.orders", "sales.customers"],
    "Finance": ["finance.ledger"],
    "Inventory": ["ops.stock"],
}
WORKSPACE = "Sales"


@dag(
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["powerbi", "example"],
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": dt.timedelta(minutes=1)},
)
def refresh_changed_models() -> None:
    @task
    def load_warehouse(dag_run: object = None) -> list[str]:
        """Stand-in for the ETL: the tables it loaded (from the run's conf, or every table)."""
        conf = getattr(dag_run, "conf", None) or {}
        default = sorted({table for tables in MODELS.values() for table in tables})
        return list(conf.get("changed_tables", default))

    @powerbi_refresh(workspace=WORKSPACE, deferrable=True, if_running="wait", fail_policy="any")
    def refresh_models(changed_tables: list[str]) -> list[str]:
        """The models reading a changed table and not refreshed successfully in the last hour."""
        pbi = powerbi_context()
        changed = set(changed_tables)
        return [
            model
            for model, tables in MODELS.items()
            if changed & set(tables) and not pbi.refreshed_within(model, dt.timedelta(hours=1))
        ]

    refresh_models(load_warehouse())


refresh_changed_models()
