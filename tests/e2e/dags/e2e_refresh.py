"""The refresh DAGs the drills trigger (copied into the deployment's DAG folder).

Each run's conf says what to refresh: ``{"workspace": name, "datasets": [name, ...], "enhanced": [name, ...]}``
(an enhanced refresh, ``type="Full"``, is one Power BI can cancel).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag

from pbi_taskflow import Refresh, powerbi_refresh

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
WORKSPACE = "{{ dag_run.conf['workspace'] }}"
WAIT = {"poll_interval": 0.5, "max_poll_interval": 2}


def _selection(conf: dict[str, Any]) -> list[Any]:
    enhanced = set(conf.get("enhanced", ()))
    return [Refresh(name, type="Full") if name in enhanced else name for name in conf["datasets"]]


def _refresh_dag(dag_id: str, *, deferrable: bool, retries: int) -> None:
    @dag(dag_id=dag_id, schedule=None, start_date=START, catchup=False, max_active_runs=64, max_active_tasks=64,
         default_args={"retries": retries, "retry_delay": dt.timedelta(seconds=1)}, tags=["e2e"])
    def refresh_dag() -> None:
        @powerbi_refresh(workspace=WORKSPACE, deferrable=deferrable, **WAIT)
        def refresh(**context: Any) -> list[Any]:
            return _selection(context["dag_run"].conf)

        refresh()

    refresh_dag()


_refresh_dag("e2e_worker", deferrable=False, retries=2)
_refresh_dag("e2e_deferred", deferrable=True, retries=2)
_refresh_dag("e2e_worker_once", deferrable=False, retries=0)
