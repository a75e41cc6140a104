"""A lean in-process Execution API for ``dag.test()``: only the API version this Task SDK speaks.

``dag.test()`` runs each task against Airflow's real Execution API, served in this process. On its
first request Airflow builds that API for every version it still supports (ten in Airflow 3.3), so
that old workers keep working; that costs a few seconds of CPU per test session. The in-process
client only ever sends the newest version, so :func:`prepare_execution_api` builds the same app from
the same routes with that one version and hands it to ``dag.test()``. Routes kept only for older
clients are left out; everything the Task SDK calls is served by Airflow's own code.

It falls back to Airflow's full API (with an :class:`~pbi_taskflow.testing._compat.AirflowCompatWarning`)
whenever the installed Airflow does not look as expected: the Task SDK speaks an older version than
the newest one, the newest version has head migrations, or any step fails.
``PBI_TASKFLOW_FULL_EXECUTION_API=1`` always uses the full API. The Airflow and Cadwyn internals this
needs live in :mod:`pbi_taskflow.testing._compat`.
"""

from __future__ import annotations

import os

__all__ = ["FULL_API_ENV", "prepare_execution_api"]

FULL_API_ENV = "PBI_TASKFLOW_FULL_EXECUTION_API"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def prepare_execution_api() -> str:
    """Make ``dag.test()`` in this process use the one-version Execution API; return ``"lean"`` or ``"full"``.

    Idempotent and thread-safe; call it before the first ``dag.test()`` of the process (later calls
    return the decision already made; after a ``dag.test()`` it keeps the full API that call built).
    ``run_dag`` and ``run_task`` call it for you.
    """
    from pbi_taskflow.testing._compat import prepare_lean_execution_api

    return prepare_lean_execution_api(full=_truthy(os.environ.get(FULL_API_ENV)))
