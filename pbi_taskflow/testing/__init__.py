"""Test kit for DAGs that refresh Power BI: the pytest plugin and its helpers.

The fixtures come from :mod:`pbi_taskflow.testing.plugin` (loaded automatically by pytest). The
helpers below work without pytest too (for scripts and the demo); they load Airflow on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "AirflowCompatWarning": "pbi_taskflow.testing._compat",
    "DagRunResult": "pbi_taskflow.testing.runner",
    "TaskInstanceInfo": "pbi_taskflow.testing.runner",
    "run_dag": "pbi_taskflow.testing.runner",
    "run_task": "pbi_taskflow.testing.runner",
    "DagPolicy": "pbi_taskflow.testing.integrity",
    "DagIntegrityError": "pbi_taskflow.testing.integrity",
    "assert_dag_integrity": "pbi_taskflow.testing.integrity",
    "configure_airflow_env": "pbi_taskflow.testing.env",
    "migrate_db": "pbi_taskflow.testing.env",
    "FakePowerBIClient": "pbi_taskflow.testing.fake_client",
}

__all__ = [
    "AirflowCompatWarning",
    "DagIntegrityError",
    "DagPolicy",
    "DagRunResult",
    "FakePowerBIClient",
    "TaskInstanceInfo",
    "assert_dag_integrity",
    "configure_airflow_env",
    "migrate_db",
    "run_dag",
    "run_task",
]

if TYPE_CHECKING:
    from pbi_taskflow.testing._compat import AirflowCompatWarning as AirflowCompatWarning
    from pbi_taskflow.testing.env import configure_airflow_env as configure_airflow_env
    from pbi_taskflow.testing.env import migrate_db as migrate_db
    from pbi_taskflow.testing.fake_client import FakePowerBIClient as FakePowerBIClient
    from pbi_taskflow.testing.integrity import DagIntegrityError as DagIntegrityError
    from pbi_taskflow.testing.integrity import DagPolicy as DagPolicy
    from pbi_taskflow.testing.integrity import assert_dag_integrity as assert_dag_integrity
    from pbi_taskflow.testing.runner import DagRunResult as DagRunResult
    from pbi_taskflow.testing.runner import TaskInstanceInfo as TaskInstanceInfo
    from pbi_taskflow.testing.runner import run_dag as run_dag
    from pbi_taskflow.testing.runner import run_task as run_task


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'pbi_taskflow.testing' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
