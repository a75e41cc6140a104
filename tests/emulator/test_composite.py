"""Emulated composite models: a dataset reading other datasets lists each as an AnalysisServices data source on a
powerbi:// server naming the workspace, with the model's name as database; seeded from the Python API and from a
scenario's upstream_datasets; every body validates against the swagger."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator

from .test_swagger import _check, swagger

__all__ = ["swagger"]


def _sources(api: Any, emu: Emulator, dataset: str) -> list[dict[str, Any]]:
    ds = emu.state.dataset(dataset)
    answer = api.get(f"{emu.api_root}/groups/{ds.workspace_id}/datasets/{ds.id}/datasources")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def test_a_composite_model_lists_the_models_it_reads(swagger: dict[str, Any], emu: Emulator, api: Any) -> None:
    emu.add_workspace("Finance Core")
    emu.add_workspace("Reporting")
    core = emu.add_dataset("Finance Core", "Sales Core")
    emu.add_dataset("Reporting", "Budget")
    composite = emu.add_dataset("Reporting", "Sales Composite")
    added = emu.link_model(composite["id"], ["Sales Core", "Budget"])
    assert [s["datasource_type"] for s in added] == ["AnalysisServices", "AnalysisServices"]
    assert emu.link_model("Sales Composite", [core["id"]]) == []  # linking twice changes nothing
    body = _sources(api, emu, "Sales Composite")
    _check(swagger, "Datasources", body)
    assert body["value"] == [
        {"datasourceType": "AnalysisServices",
         "connectionDetails": {"server": "powerbi://api.powerbi.com/v1.0/myorg/Finance Core", "database": "Sales Core"}},
        {"datasourceType": "AnalysisServices",
         "connectionDetails": {"server": "powerbi://api.powerbi.com/v1.0/myorg/Reporting", "database": "Budget"}},
    ]
    dataset = api.get(f"{emu.api_root}/groups/{composite['workspace_id']}/datasets/{composite['id']}").json()
    _check(swagger, "Dataset", dataset)
    assert dataset["isOnPremGatewayRequired"] is False  # a cloud source: no gateway needed
    assert _sources(api, emu, "Sales Core")["value"] == []


def test_a_model_cannot_read_itself_or_an_unknown_model(emu: Emulator) -> None:
    emu.add_workspace("Reporting")
    emu.add_dataset("Reporting", "Budget")
    with pytest.raises(ValueError, match="cannot read itself"):
        emu.link_model("Budget", "Budget")
    with pytest.raises(ValueError, match="No emulated dataset 'Ghost'"):
        emu.link_model("Budget", ["Ghost"])
    assert emu.state.dataset("Budget").datasources == []


def test_composite_models_seed_from_a_scenario(emu: Emulator, api: Any) -> None:
    """upstream_datasets may name a dataset seeded later in the file, in another workspace."""
    emu.seed({"workspaces": [
        {"name": "Reporting", "datasets": [{"name": "Sales Composite", "upstream_datasets": ["Sales Core"]}]},
        {"name": "Finance", "datasets": [{"name": "Sales Core"}]},
    ]})
    [source] = _sources(api, emu, "Sales Composite")["value"]
    assert source["connectionDetails"] == {"server": "powerbi://api.powerbi.com/v1.0/myorg/Finance",
                                           "database": "Sales Core"}
    assert "gatewayId" not in source
    with pytest.raises(TypeError, match="upstream_datasets must be a list"):
        emu.seed({"workspaces": [{"name": "W", "datasets": [{"name": "D", "upstream_datasets": "Sales Core"}]}]})
