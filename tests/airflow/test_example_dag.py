"""The example DAG ``examples/dags/refresh_changed_models.py`` runs as documented against the emulator."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dags" / "refresh_changed_models.py"


def _load_dag() -> Any:
    spec = importlib.util.spec_from_file_location("refresh_changed_models_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.refresh_changed_models()


def test_only_changed_and_stale_models_are_refreshed(sales: Any, run_dag: Any) -> None:
    """Changed tables select two models; the one refreshed 10 minutes ago is left alone."""
    for model in ("Sales Analytics", "Finance", "Inventory"):
        sales.add_dataset("Sales", model, duration=0.5)
    sales.add_history("Finance", ago=600, duration=60)
    sales.add_history("Sales Analytics", ago=7200, duration=60)
    result = run_dag(_load_dag(), conf={"changed_tables": ["sales.orders", "finance.ledger"]})
    assert result.state == "success", result.logs()
    records = result.xcom("refresh_models")
    assert [(r["dataset_name"], r["status"]) for r in records] == [("Sales Analytics", "Completed")]
    assert sales.count("refresh_post") == 1
    assert [e["extra"]["dataset_name"] for e in result.asset_events] == ["Sales Analytics"]


def test_context_reports_catalog_last_refresh_and_quota(sales: Any) -> None:
    """powerbi_context() lists the catalog, the last refresh and the shared-capacity quota left."""
    from pbi_taskflow import powerbi_context

    sales.add_workspace("Shared", dedicated=False)
    sales.add_dataset("Shared", "Pro Model")
    sales.add_history("Pro Model", ago=3600, duration=120, refresh_type="Scheduled")
    sales.add_history("Pro Model", ago=7200, duration=100, refresh_type="ViaApi")
    sales.add_history("Pro Model", ago=90_000, duration=100, refresh_type="ViaApi")
    pbi = powerbi_context(workspace="Shared")
    assert [(d.name, d.is_refreshable) for d in pbi.datasets()] == [("Pro Model", True)]
    last = pbi.last_refresh("pro model")
    assert last is not None
    assert last.status.value == "Completed"
    assert last.duration_s == pytest.approx(120, abs=1)
    assert pbi.refreshed_within("Pro Model", 7200)
    assert not pbi.refreshed_within("Pro Model", 1800)
    assert pbi.quota_remaining("Pro Model") == 6
    assert powerbi_context(workspace="Sales").quota_remaining("Revenue") is None
