"""Errors no retry can fix fail the task in one try under real ``dag.test()``; refresh failures still retry."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from typing import Any

import pytest

from pbi_taskflow import powerbi_refresh
from pbi_taskflow.errors import InvalidSecretError, SecretExpiredError

pytestmark = pytest.mark.integration


def _retrying(dag_id: str, make_dag: Any, selection: Any, seen: dict[str, list[Any]], **task_kwargs: Any) -> Any:
    def on_retry(context: Any) -> None:
        seen["retry"].append(context["ti"].try_number)

    def on_failure(context: Any) -> None:
        from pbi_taskflow.alerts.facts import build_facts

        seen["failure"].append(context["exception"])
        seen.setdefault("facts", []).append(build_facts(context))

    def body() -> None:
        @powerbi_refresh(task_id="refresh", workspace="Sales", poll_interval=0.1, max_poll_interval=0.5, retries=1,
                         retry_delay=dt.timedelta(seconds=0), on_retry_callback=on_retry,
                         on_failure_callback=on_failure, **task_kwargs)
        def refresh() -> Any:
            return selection

        refresh()

    return make_dag(dag_id, body)


def test_bad_secret_fails_in_one_try_and_stays_recognisable(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With retries=1 a refused secret ends the task in one try, logged and alerted as InvalidSecretError."""
    conn = sales.airflow_conn()
    conn["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
    seen: dict[str, list[Any]] = {"retry": [], "failure": []}
    result = run_dag(_retrying("bad_secret", make_dag, ["Revenue"], seen))
    assert result.task_states["refresh"] == "failed"
    assert seen["retry"] == []
    [exc] = seen["failure"]
    assert isinstance(exc, InvalidSecretError)
    assert isinstance(pickle.loads(pickle.dumps(exc)), InvalidSecretError)
    assert "InvalidSecretError" in result.logs("refresh")
    assert sales.count("refresh_post") == 0
    [facts] = seen["facts"]
    assert (facts["event"], facts["final"], facts["try_number"], facts["max_tries"]) == ("failure", True, 1, 1)


def test_wrong_return_shape_fails_in_one_try_as_a_type_error(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """A selection of the wrong shape fails once with a TypeError naming the value, without a retry."""
    seen: dict[str, list[Any]] = {"retry": [], "failure": []}
    result = run_dag(_retrying("bad_shape", make_dag, 42, seen))
    assert result.task_states["refresh"] == "failed"
    assert seen["retry"] == []
    [exc] = seen["failure"]
    assert isinstance(exc, TypeError)
    assert "42" in str(exc)
    assert "TypeError" in result.logs("refresh")


def test_a_failed_refresh_is_still_retried(sales: Any, make_dag: Any, run_dag: Any) -> None:
    """A Power BI refresh failure keeps Airflow's retries: the retry callback runs once."""
    sales.set_refresh("Revenue", outcome="Failed", error_code="Boom", error_message="source down")
    seen: dict[str, list[Any]] = {"retry": [], "failure": []}
    result = run_dag(_retrying("refresh_failed", make_dag, ["Revenue"], seen))
    assert result.task_states["refresh"] == "failed"
    assert seen["retry"] == [1]
    assert len(seen["failure"]) == 1
    assert [f["final"] for f in seen["facts"]] == [False]  # it used its retry


def test_secret_expiring_while_deferred_fails_in_one_try_as_secret_expired(
    sales: Any, make_dag: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret that expires while the task is deferred fails it in one try (retries=1) as SecretExpiredError."""
    from pbi_taskflow.airflow.operator import PowerBIRefreshOperator
    from pbi_taskflow.client.auth import clear_token_caches

    sales.set_refresh("Revenue", duration=5.0)
    sales.add_app(sales.client_id, secret="expired-secret-value", secret_expired=True)
    conn = sales.airflow_conn()
    conn["password"] = "expired-secret-value"
    defer = PowerBIRefreshOperator._defer

    def expire_then_defer(self: Any, run: Any, deferral: Any) -> None:
        # the refresh has started; from now on the connection holds an expired secret and no token is cached,
        # so the trigger must ask Entra for a token and is refused
        monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
        clear_token_caches()
        defer(self, run, deferral)

    monkeypatch.setattr(PowerBIRefreshOperator, "_defer", expire_then_defer)
    seen: dict[str, list[Any]] = {"retry": [], "failure": []}
    result = run_dag(_retrying("expired_while_deferred", make_dag, ["Revenue"], seen, deferrable=True))
    assert result.task_states["refresh"] == "failed"
    assert sales.count("refresh_post") == 1
    assert seen["retry"] == []
    [exc] = seen["failure"]
    assert isinstance(exc, SecretExpiredError)
    assert str(exc.code).startswith("AADSTS7000222")
    logs = result.logs("refresh")
    assert "SecretExpiredError" in logs
    assert "expired-secret-value" not in logs
