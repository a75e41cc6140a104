"""The one-version in-process Execution API that run_dag hands to dag.test(), and its fallbacks."""

from __future__ import annotations

import pytest

from pbi_taskflow.testing import _compat, execution_api


def _fresh_server():
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI

    return InProcessExecutionAPI()


def _request(server, path: str, version: str):
    import httpx

    with httpx.Client(transport=server.transport, base_url="http://in-process.invalid./") as client:
        return client.get(path, headers={"Airflow-API-Version": version})


@pytest.mark.integration
def test_run_dag_uses_the_lean_api_with_only_the_task_sdk_version(run_dag):
    """After run_dag, the process's in-process API serves exactly the version the Task SDK sends."""
    from airflow.sdk import dag, task
    from airflow.sdk.api.datamodels._generated import API_VERSION
    from airflow.sdk.execution_time import supervisor

    @dag(dag_id="kit_lean_api", schedule=None)
    def lean():
        @task
        def one() -> int:
            return 1

        one()

    assert run_dag(lean()).state == "success"
    assert execution_api.prepare_execution_api() == "lean"
    app = supervisor.in_process_api_server().app
    assert [str(v.value) for v in app.versions] == [str(API_VERSION)]


@pytest.mark.integration
def test_lean_build_serves_the_sdk_version_and_restores_airflows_modules(airflow_home):
    """The lean app answers the Task SDK's version, rejects older ones, and Airflow's bundle is put back."""
    from airflow.api_fastapi.execution_api import routes, versions
    from airflow.sdk.api.datamodels._generated import API_VERSION

    bundle, router = versions.bundle, routes.execution_api_router
    server = _fresh_server()
    _compat.build_lean_execution_api(server)
    assert versions.bundle is bundle
    assert routes.execution_api_router is router
    assert len(bundle.versions) > 1  # Airflow still serves every version to real workers

    assert _request(server, "/health/ping", str(API_VERSION)).status_code == 200
    oldest = str(bundle.versions[-1].value)
    assert _request(server, "/health/ping", oldest).status_code == 404  # not served in-process


@pytest.mark.integration
def test_an_sdk_speaking_an_older_version_falls_back_to_the_full_api(airflow_home, monkeypatch):
    """When the Task SDK does not speak Airflow's newest version, nothing is trimmed and no server is kept."""
    from airflow.api_fastapi.execution_api import routes, versions
    from airflow.sdk.api.datamodels import _generated

    bundle, router = versions.bundle, routes.execution_api_router
    monkeypatch.setattr(_generated, "API_VERSION", str(bundle.versions[-1].value))
    cleared = []

    def factory():
        return _fresh_server()

    factory.cache_clear = lambda: cleared.append(True)  # type: ignore[attr-defined]
    monkeypatch.setattr("airflow.sdk.execution_time.supervisor.in_process_api_server", factory)
    monkeypatch.setattr(_compat, "_api_decision", None)

    with pytest.warns(_compat.AirflowCompatWarning, match="full Execution API is used"):
        assert execution_api.prepare_execution_api() == "full"
    assert cleared == [True]
    assert versions.bundle is bundle
    assert routes.execution_api_router is router


def test_the_opt_out_variable_keeps_airflows_full_api(monkeypatch):
    """PBI_TASKFLOW_FULL_EXECUTION_API=1 decides "full" without touching Airflow."""
    monkeypatch.setattr(_compat, "_api_decision", None)
    monkeypatch.setenv(execution_api.FULL_API_ENV, "1")
    monkeypatch.setattr(_compat, "build_lean_execution_api", lambda server: pytest.fail("must not build a lean API"))
    assert execution_api.prepare_execution_api() == "full"
    assert execution_api.prepare_execution_api() == "full"  # decided once per process


def test_an_api_built_before_run_dag_is_kept(monkeypatch):
    """If dag.test() already built the in-process API, it is kept (and reported) as the full one, not rebuilt."""

    class Built:
        _app = object()

    def factory():
        return Built()

    factory.cache_clear = lambda: pytest.fail("must not drop the API in use")  # type: ignore[attr-defined]
    monkeypatch.setattr("airflow.sdk.execution_time.supervisor.in_process_api_server", factory)
    monkeypatch.setattr(_compat, "_api_decision", None)
    monkeypatch.setattr(_compat, "build_lean_execution_api", lambda server: pytest.fail("must not rebuild"))
    assert execution_api.prepare_execution_api() == "full"
