"""Every Airflow internal the test kit uses has a fallback that keeps results correct; each one runs here.

Each test points one internal of pbi_taskflow.testing._compat at a missing name, as a future Airflow
release that moved it would, and checks the kit still gives the right answer (and warns). This module
runs on every Airflow release CI tests (.ci/airflow-compat).
"""

from __future__ import annotations

import logging
import os
import warnings

import pytest

from pbi_taskflow.testing import _compat, dbcache

pytestmark = pytest.mark.integration


def _two_task_dag(dag_id: str):
    from airflow.sdk import dag, task

    @dag(dag_id=dag_id, schedule=None)
    def two():
        @task
        def alpha() -> int:
            logging.getLogger("kit.compat").warning("line from alpha")
            return 1

        @task
        def beta(value: int) -> int:
            logging.getLogger("kit.compat").warning("line from beta")
            return value + 1

        beta(alpha())

    return two()


def test_db_url_falls_back_to_airflows_configuration(airflow_home, monkeypatch):
    """Without airflow.settings.SQL_ALCHEMY_CONN the URL comes from [database] sql_alchemy_conn."""
    expected = _compat.metadata_db_url()
    assert expected == os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    monkeypatch.setattr(_compat, "SETTINGS", ("airflow.settings", "NO_SUCH_SETTING"))
    with pytest.warns(_compat.AirflowCompatWarning, match="SQL_ALCHEMY_CONN"):
        assert _compat.metadata_db_url() == expected


def test_without_the_engine_the_database_cache_is_not_used(airflow_home, monkeypatch):
    """If pooled connections cannot be closed, the caller is told not to replace the database file."""
    assert _compat.release_db_connections() is True
    monkeypatch.setattr(_compat, "ENGINE", ("airflow.settings", "no_such_engine"))
    with pytest.warns(_compat.AirflowCompatWarning, match="created instead of copied"):
        assert _compat.release_db_connections() is False


@pytest.mark.slow
def test_db_creation_falls_back_to_airflows_cli(airflow_home, monkeypatch, tmp_path):
    """Without airflow.utils.db.initdb the tables are created by `airflow db migrate` in a subprocess."""
    database = tmp_path / "fallback.db"
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{database}")
    monkeypatch.setattr(_compat, "DB_FUNCTIONS", ("airflow.utils.no_such_db", "initdb"))
    with pytest.warns(_compat.AirflowCompatWarning, match="Airflow's CLI"):
        _compat.create_metadata_db()
    assert dbcache.is_valid_db(database)


def test_task_logs_fall_back_to_run_task_in_process(run_dag, monkeypatch):
    """Without dag._run_task, lines are attributed through run_task_in_process, to the right task."""
    monkeypatch.setattr(_compat, "RUN_TASK", ("airflow.sdk.definitions.dag", "_no_such_run_task"))
    with pytest.warns(_compat.AirflowCompatWarning, match="run_task_in_process"):
        result = run_dag(_two_task_dag("kit_compat_logs"))
    assert result.state == "success", result.logs()
    assert result.xcom("beta") == 2
    assert "line from alpha" in result.logs("alpha")
    assert "line from alpha" not in result.logs("beta")
    assert "line from beta" in result.logs("beta")


def test_without_either_task_hook_every_line_is_still_captured(run_dag, monkeypatch):
    """With neither hook, the run and its results are unchanged and the lines are in the run's log."""
    monkeypatch.setattr(_compat, "RUN_TASK", ("airflow.sdk.definitions.dag", "_no_such_run_task"))
    monkeypatch.setattr(_compat, "RUN_TASK_IN_PROCESS", ("airflow.sdk.execution_time.supervisor", "no_such_runner"))
    with pytest.warns(_compat.AirflowCompatWarning, match="not attributed"):
        result = run_dag(_two_task_dag("kit_compat_no_hook"))
    assert result.task_states == {"alpha": "success", "beta": "success"}
    assert "line from alpha" in result.logs()
    assert "line from beta" in result.logs()


def test_a_changed_execution_api_falls_back_to_airflows_full_api(run_dag, monkeypatch):
    """If the one-version Execution API cannot be built, Airflow builds its full one and DAGs still run."""
    from airflow.sdk.execution_time import supervisor

    cache_clear = getattr(supervisor.in_process_api_server, "cache_clear", None)  # cached since Airflow 3.3
    monkeypatch.setattr(_compat, "DELETED_ROUTE_TAG", ("cadwyn.route_generation", "_NO_SUCH_TAG"))
    if cache_clear is not None:
        cache_clear()
    _compat._api_decision = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_dag(_two_task_dag("kit_compat_full_api"))
        assert result.state == "success", result.logs()
        assert result.xcom("beta") == 2
        assert _compat._api_decision == "full"
        compat_warnings = [w for w in caught if issubclass(w.category, _compat.AirflowCompatWarning)]
        if cache_clear is not None:  # the lean API is only tried where it is reused
            assert any("Execution API" in str(w.message) for w in compat_warnings)
            assert len(list(supervisor.in_process_api_server().app.versions)) > 1  # every version Airflow serves
        else:
            assert compat_warnings == []
    finally:
        if cache_clear is not None:
            cache_clear()  # later run_dag calls build the one-version API again
        _compat._api_decision = None
