"""Shared helpers for the Airflow-layer tests: a small DAG builder and a seeded emulator workspace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def make_dag() -> Callable[..., Any]:
    """Build a DAG from a function that declares its tasks (called inside the DAG context)."""

    def build(dag_id: str, body: Callable[[], Any], **dag_kwargs: Any) -> Any:
        from airflow.sdk import DAG

        dag_kwargs.setdefault("schedule", None)
        dag_kwargs.setdefault("start_date", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        dag_kwargs.setdefault("catchup", False)
        with DAG(dag_id, **dag_kwargs) as dag:
            body()
        return dag

    return build


@pytest.fixture
def sales(emulator: Any, pbi_connection: str, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator with workspace ``Sales`` holding datasets Revenue, Costs and Stock (short refreshes).

    The ``[pbi_taskflow]`` poll defaults are lowered so tasks without explicit intervals poll fast too.
    """
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__POLL_MIN_INTERVAL", "0.1")
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__POLL_MAX_INTERVAL", "0.5")
    emulator.add_workspace("Sales")
    for name in ("Revenue", "Costs", "Stock"):
        emulator.add_dataset("Sales", name, duration=0.6)
    return emulator
