"""The few Airflow 3.x differences the test kit meets: ``DagBag``, writing a bag to the DB, cycle checks.

Airflow 3.1 replaced ``DagBag.sync_to_db`` with a module-level ``sync_bag_to_db`` next to ``DagBag``
in ``airflow.models.dagbag``, and gave DAGs ``check_cycle()`` raising the Task SDK's cycle error;
Airflow 3.2 moved both to ``airflow.dag_processing.dagbag``. Airflow 3.0 has
``airflow.models.dagbag.DagBag`` with ``DagBag.sync_to_db`` and
``airflow.utils.dag_cycle_tester.check_cycle`` raising ``airflow.exceptions.AirflowDagCycleException``.
"""

from __future__ import annotations

from typing import Any


def _dagbag_module() -> Any:
    """The module holding Airflow's ``DagBag``."""
    try:
        import airflow.dag_processing.dagbag as module
    except ImportError:  # Airflow 3.0 and 3.1
        import airflow.models.dagbag as module  # type: ignore[no-redef]
    return module


def dag_bag_class() -> Any:
    """Airflow's ``DagBag`` class."""
    return _dagbag_module().DagBag


def sync_bag(bag: Any, bundle_name: str, bundle_version: str | None) -> None:
    """Write the DAGs of ``bag`` (serialized) into the metadata database under ``bundle_name``."""
    sync_bag_to_db = getattr(_dagbag_module(), "sync_bag_to_db", None)
    if sync_bag_to_db is None:  # Airflow 3.0: a DAG added with bag_dag() has no relative_fileloc, which the DB needs
        for dag in bag.dags.values():
            if getattr(dag, "relative_fileloc", None) is None:
                dag.relative_fileloc = dag.fileloc
        bag.sync_to_db(bundle_name, bundle_version)
        return
    sync_bag_to_db(bag, bundle_name, bundle_version)


def check_cycle(dag: Any) -> None:
    """Raise :func:`cycle_error` if ``dag`` has a cycle."""
    method = getattr(dag, "check_cycle", None)
    if method is not None:
        method()
        return
    from airflow.utils.dag_cycle_tester import check_cycle as airflow_check_cycle  # Airflow 3.0

    airflow_check_cycle(dag)


def cycle_error() -> type[Exception]:
    """The exception class Airflow raises for a DAG with a cycle."""
    try:
        from airflow.sdk.exceptions import AirflowDagCycleException
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import AirflowDagCycleException  # type: ignore[no-redef]
    return AirflowDagCycleException  # type: ignore[no-any-return]


__all__ = ["check_cycle", "cycle_error", "dag_bag_class", "sync_bag"]
