"""The hook and the trigger against the emulator: connection test, trigger serialization and its async loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbi_taskflow.client.models import Refresh

pytestmark = pytest.mark.integration


def test_hook_test_connection_reports_visible_workspaces(sales: Any) -> None:
    """test_connection() gets a token and lists the workspaces, as `airflow connections test` shows."""
    from pbi_taskflow.airflow.hook import PowerBIHook

    ok, message = PowerBIHook().test_connection()
    assert ok, message
    assert "Sales" in message
    assert sales.count("token") == 1


def test_hook_test_connection_reports_a_bad_secret(sales: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong secret gives a failed test with Entra's reason, never the secret itself."""
    import json

    from pbi_taskflow.airflow.hook import PowerBIHook
    from pbi_taskflow.client.auth import clear_token_caches

    clear_token_caches()  # tokens are cached per app and tenant, not per secret
    conn = json.loads(sales.airflow_conn_json())
    conn["password"] = "definitely-wrong-secret"
    monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
    ok, message = PowerBIHook().test_connection()
    assert not ok
    assert "definitely-wrong-secret" not in message


def _run_with_one_refresh(sales: Any, duration: float, *, enhanced: bool) -> tuple[Any, Any]:
    from pbi_taskflow.client.settings import ConnectionSettings
    from pbi_taskflow.engine.policy import RefreshPolicy
    from pbi_taskflow.engine.run import RefreshRun

    client = ConnectionSettings.from_mapping(sales.settings()).build_client()
    sales.set_refresh("Revenue", duration=duration)
    target = client.resolve(Refresh("Revenue", "Sales", type="Full" if enhanced else None))
    policy = RefreshPolicy(poll_min=0.1, poll_max=0.5, timeout=None)
    run = RefreshRun()
    handle = client.trigger_refresh(target)
    run.active[handle.refresh_id] = handle.to_dict()
    import time

    run.started[handle.refresh_id] = time.time()
    return run, policy


def test_trigger_serializes_plain_values_and_round_trips(sales: Any) -> None:
    """serialize() gives the classpath and JSON-ready kwargs that rebuild an equal trigger."""
    import importlib
    import json

    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger

    run, policy = _run_with_one_refresh(sales, 0.3, enhanced=False)
    trigger = PowerBIRefreshTrigger(conn_id="powerbi_default", run=run.to_dict(), policy=policy.to_dict())
    path, kwargs = trigger.serialize()
    assert path == "pbi_taskflow.trigger.PowerBIRefreshTrigger"  # the stable path Airflow stores
    module, name = path.rsplit(".", 1)
    assert getattr(importlib.import_module(module), name) is PowerBIRefreshTrigger
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert PowerBIRefreshTrigger(**kwargs).serialize() == (path, kwargs)


def test_trigger_yields_one_event_carrying_the_results(sales: Any) -> None:
    """The async loop watches the refresh until done and yields one event with the final result."""
    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger

    run, policy = _run_with_one_refresh(sales, 0.5, enhanced=True)
    trigger = PowerBIRefreshTrigger(conn_id="powerbi_default", run=run.to_dict(), policy=policy.to_dict())

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    [event] = asyncio.run(collect())
    assert event.payload["status"] == "done"
    [result] = event.payload["run"]["results"]
    assert (result["dataset_name"], result["status"], result["kind"]) == ("Revenue", "Completed", "enhanced")


def test_trigger_holds_a_quick_outcome_until_not_before(sales: Any) -> None:
    """Refreshes that end right after the deferral are reported no sooner than ``not_before``, and correctly."""
    import time

    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger

    run, policy = _run_with_one_refresh(sales, 0.2, enhanced=False)
    not_before = time.time() + 2.5
    trigger = PowerBIRefreshTrigger(
        conn_id="powerbi_default", run=run.to_dict(), policy=policy.to_dict(), not_before=not_before
    )

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    [event] = asyncio.run(collect())
    assert time.time() >= not_before
    assert event.payload["status"] == "done"
    assert [r["status"] for r in event.payload["run"]["results"]] == ["Completed"]
    assert trigger.serialize()[1]["not_before"] == not_before


def test_trigger_on_kill_cancels_started_enhanced_refreshes(sales: Any) -> None:
    """Killing the deferred task cancels the enhanced refresh it started."""
    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger

    run, policy = _run_with_one_refresh(sales, 60, enhanced=True)
    trigger = PowerBIRefreshTrigger(conn_id="powerbi_default", run=run.to_dict(), policy=policy.to_dict())
    asyncio.run(trigger.on_kill())
    assert sales.count("cancel") == 1


def test_trigger_reports_refused_credentials_as_an_error_event(sales: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """If Entra refuses the credentials while deferred, the trigger ends with an error event naming the cause and its class."""
    import json

    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger
    from pbi_taskflow.client.auth import clear_token_caches

    run, policy = _run_with_one_refresh(sales, 30, enhanced=True)
    clear_token_caches()
    conn = json.loads(sales.airflow_conn_json())
    conn["password"] = "revoked-secret-value"
    monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", json.dumps(conn))
    trigger = PowerBIRefreshTrigger(conn_id="powerbi_default", run=run.to_dict(), policy=policy.to_dict())

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    [event] = asyncio.run(collect())
    assert event.payload["status"] == "error"
    assert "revoked-secret-value" not in event.payload["error"]
    assert event.payload["error_detail"]["class"] == "pbi_taskflow.errors.InvalidSecretError"
    assert event.payload["error_detail"]["fields"]["client_id"] == conn["login"]  # the alert names the app
    assert "revoked-secret-value" not in json.dumps(event.payload)
    assert event.payload["run"]["active"]
    assert sales.count("cancel") == 0


def test_an_unexpected_trigger_error_ends_in_an_error_event_keeping_the_refreshes(
    sales: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while watching gives an error event that names it and still holds the running refresh, uncancelled."""
    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger
    from pbi_taskflow.engine import waiter as waiter_module

    run, policy = _run_with_one_refresh(sales, 30, enhanced=True)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("no-such-key")

    monkeypatch.setattr(waiter_module, "apply_observation", broken)
    trigger = PowerBIRefreshTrigger(conn_id="powerbi_default", run=run.to_dict(), policy=policy.to_dict())

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    [event] = asyncio.run(collect())
    assert event.payload["status"] == "error"
    assert "KeyError" in event.payload["error"]
    assert "resumes watching them" in event.payload["error"]
    assert event.payload["error_detail"]["class"] == "pbi_taskflow.errors.PowerBIError"
    assert list(event.payload["run"]["active"]) == list(run.active)
    assert sales.count("cancel") == 0
