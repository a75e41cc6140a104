"""The fan-out DAGs the triggerer drills trigger: many deferred refresh tasks in one run (a mapped task).

Conf ``{"workspace": name, "prefix": p}``: map index 7 refreshes the dataset ``p007``, as an enhanced refresh
(``type="Full"``, one Power BI can cancel) when the index is odd. One mapped task keeps each task process's DAG
parse short, whatever the width.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag

from pbi_taskflow import Refresh, powerbi_refresh

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _fanout_dag(dag_id: str, width: int, **wait: Any) -> None:
    @dag(dag_id=dag_id, schedule=None, start_date=START, catchup=False, max_active_runs=4, max_active_tasks=width,
         default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=1)}, tags=["e2e"])
    def fanout_dag() -> None:
        @powerbi_refresh(workspace="{{ dag_run.conf['workspace'] }}", deferrable=True, **wait)
        def refresh(index: int, **context: Any) -> list[Any]:
            name = f"{context['dag_run'].conf['prefix']}{index:03d}"
            return [Refresh(name, type="Full") if index % 2 else name]

        refresh.expand(index=list(range(width)))

    fanout_dag()


# the takeover drills poll fast to see each refresh end soon; the scale drill polls as a deployment does by default
_fanout_dag("e2e_fanout_20", 20, poll_interval=0.5, max_poll_interval=2)
_fanout_dag("e2e_fanout_200", 200)
