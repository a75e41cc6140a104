"""Unit tests for pbi_taskflow.airflow.decorator and the operator's parse-time validation (no I/O)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import pytest

from pbi_taskflow.errors import ConfigurationError


def test_decorator_import_loads_no_client_stack() -> None:
    """Importing the decorator (what a DAG file does) loads neither msal, requests, the client, the trigger nor the emulator."""
    code = (
        "import sys, airflow; import pbi_taskflow.airflow.decorator; "
        "bad = ['msal', 'requests', 'pbi_taskflow.client.sync', 'pbi_taskflow.client.aio', 'pbi_taskflow.airflow.trigger', "
        "'pbi_taskflow.emulator', 'pbi_taskflow.airflow.hook']; "
        "print([m for m in bad if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_parsing_a_dag_without_refresh_options_stays_light() -> None:
    """A DAG using the decorator without refresh options does not load the value types or the run machinery."""
    code = (
        "import sys, datetime as dt, airflow\n"
        "from airflow.sdk import DAG\n"
        "from pbi_taskflow import powerbi_refresh\n"
        "with DAG('light', schedule=None, start_date=dt.datetime(2026, 1, 1)):\n"
        "    @powerbi_refresh(workspace='Sales', if_running='skip', min_interval=3600)\n"
        "    def refresh():\n"
        "        return 'Revenue'\n"
        "    refresh()\n"
        "bad = ['pbi_taskflow.client.models', 'pbi_taskflow.engine.run', 'pbi_taskflow.engine.schedule', 'pbi_taskflow.engine.selection']\n"
        "print([m for m in bad if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _build(**kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from pbi_taskflow import powerbi_refresh

    with DAG("validation", schedule=None, start_date=dt.datetime(2026, 1, 1)):

        @powerbi_refresh(**kwargs)
        def refresh() -> str:
            return "Revenue"

        return refresh().operator


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"if_running": "later"}, "if_running"),
        ({"on_empty": "maybe"}, "on_empty"),
        ({"fail_policy": "most"}, "fail_policy"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"min_interval": -5}, "min_interval"),
        ({"timeout": "soon"}, "timeout"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"type": "Everything"}, "refresh type"),
        ({"commit_mode": "PartialBatch", "apply_refresh_policy": True}, "apply_refresh_policy"),
        ({"powerbi_timeout": "25:00:00"}, "timeout"),
        ({"wait": "yes"}, "wait"),
        ({"cancel_on_kill": "no"}, "cancel_on_kill"),
        ({"conn_id": 5}, "Invalid conn_id 5: expected the id of an Airflow connection"),
        ({"conn_id": "  "}, "Invalid conn_id"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict[str, Any], fragment: str) -> None:
    """Every decorator option is validated when the DAG is parsed, with a message naming it."""
    with pytest.raises(ConfigurationError, match=fragment):
        _build(**kwargs)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("poll_max_interval", "ten", "a number"), ("appearance_grace", "3m", "a number"),
     ("max_concurrency", "2.5", "a whole number")],
)
def test_a_bad_config_option_fails_at_parse_time_naming_it(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, expected: str
) -> None:
    """A [pbi_taskflow] option that is not a number fails with its name, what was expected and where to fix it."""
    monkeypatch.setenv(f"AIRFLOW__PBI_TASKFLOW__{key.upper()}", value)
    with pytest.raises(ConfigurationError, match=rf"Invalid \[pbi_taskflow\] {key} '{value}': expected {expected}\. "
                       rf"Fix it in airflow.cfg or in the AIRFLOW__PBI_TASKFLOW__{key.upper()} environment variable"):
        _build()


def test_options_are_typed_and_task_arguments_pass_through() -> None:
    """Refresh options become RefreshOptions; normal task arguments reach BaseOperator."""
    op = _build(
        workspace="Sales",
        type="full",
        max_parallelism=4,
        min_interval=dt.timedelta(hours=1),
        retries=3,
        pool="powerbi",
        queue="q1",
        deferrable=True,
    )
    assert op.options.to_body() == {"type": "Full", "maxParallelism": 4}
    assert op.policy.min_interval == 3600
    assert (op.retries, op.pool, op.queue, op.deferrable) == (3, "powerbi", "q1", True)
    assert op.custom_operator_name == "@task.powerbi_refresh"
    assert op.multiple_outputs is False
    assert any(getattr(o, "name", None) == "powerbi-refreshes" for o in op.outlets)


def test_defaults_come_from_config() -> None:
    """Without arguments the connection, concurrency and poll bounds come from the [pbi_taskflow] defaults."""
    op = _build()
    assert op.conn_id == "powerbi_default"
    assert (op.policy.poll_min, op.policy.poll_max, op.policy.max_concurrency) == (1.0, 600.0, 8)
    assert op.policy.timeout == 6 * 3600
    assert op.wait is True


def test_task_survives_airflow_copies_before_and_after_running() -> None:
    """Airflow deep-copies tasks (subsets, mapping); run-time state such as the kill flag must not break that."""
    import copy

    op = _build(workspace="Sales")
    copy.deepcopy(op)
    op.on_kill()  # creates the kill flag, as a killed task would
    clone = copy.deepcopy(op)
    assert clone.task_id == op.task_id
