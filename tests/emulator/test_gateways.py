"""Emulated data sources and gateways: a dataset's data sources and bindings, the bound gateway data sources, and the
gateway status answers for a healthy source, an offline gateway, missing credentials and a caller that is not a
gateway admin; seeded from the Python API and a scenario, faultable; every body validates against the swagger."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator

from .test_swagger import _check, swagger

__all__ = ["swagger"]


@pytest.fixture
def wired(emu: Emulator, sales: dict[str, str]) -> dict[str, Any]:
    """Sales reads a SQL database through gateway HQ and a file that is bound to nothing."""
    gateway = emu.add_gateway("HQ")
    sql = emu.add_datasource(sales["ds"], type="Sql", server="sql01", database="sales", gateway="HQ")
    emu.add_datasource(sales["ds"], type="File", connection_details={"path": r"\\files\orders.xlsx"})
    return {**sales, "gateway": gateway, "sql": sql,
            "status": f"{emu.api_root}/gateways/{gateway['id']}/datasources/{sql['id']}/status"}


def test_datasources_and_bound_gateway_datasources_match_the_swagger(swagger: dict[str, Any], emu: Emulator,
                                                                    api: Any, wired: dict[str, Any]) -> None:
    listing = api.get(f"{wired['base']}/datasources")
    assert listing.status_code == 200
    _check(swagger, "Datasources", listing.json())
    sql, file = listing.json()["value"]
    assert sql == {"datasourceType": "Sql", "connectionDetails": {"server": "sql01", "database": "sales"},
                   "gatewayId": wired["gateway"]["id"], "datasourceId": wired["sql"]["id"]}
    assert "gatewayId" not in file
    assert file["datasourceType"] == "File"
    bound = api.get(f"{wired['base']}/Default.GetBoundGatewayDatasources")
    _check(swagger, "GatewayDatasources", bound.json())
    [entry] = bound.json()["value"]
    assert entry["id"] == wired["sql"]["id"]
    assert entry["credentialType"] == "Basic"
    dataset = api.get(wired["base"]).json()
    assert dataset["isOnPremGatewayRequired"] is True


def test_gateway_status_tells_online_offline_and_missing_credentials(swagger: dict[str, Any], emu: Emulator,
                                                                     api: Any, wired: dict[str, Any]) -> None:
    healthy = api.get(wired["status"])
    assert (healthy.status_code, healthy.content) == (200, b"")
    emu.set_datasource(wired["ds"], wired["sql"]["id"], credentials=False)
    missing = api.get(wired["status"])
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "DMTS_DatasourceHasNoCredentialError"
    _check(swagger, "PowerBIApiErrorResponseDetail", missing.json()["error"])
    emu.set_gateway("HQ", online=False)
    offline = api.get(wired["status"])
    assert offline.status_code == 400
    assert offline.json()["error"]["code"] == "DM_GWPipeline_Client_GatewayUnreachable"
    unknown = api.get(f"{emu.api_root}/gateways/{wired['gateway']['id']}/datasources/{wired['ds']}/status")
    assert unknown.status_code == 404


def test_only_gateway_admins_may_read_its_status(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    gateway = emu.add_gateway("Branch", admins=["0b7c1e2a-1111-4222-8333-944455556666"])
    source = emu.add_datasource(sales["ds"], server="sql02", gateway=gateway["id"])
    answer = api.get(f"{emu.api_root}/gateways/{gateway['id']}/datasources/{source['id']}/status")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "PowerBINotAuthorizedException"


def test_faults_apply_to_the_data_source_reads(emu: Emulator, api: Any, wired: dict[str, Any]) -> None:
    emu.inject("datasources", "throttle", dataset=wired["ds"], retry_after=1)
    emu.inject("gateway_datasource_status", "error", status=503)
    assert api.get(f"{wired['base']}/datasources").status_code == 429
    assert api.get(f"{wired['base']}/datasources").status_code == 200
    assert api.get(wired["status"]).status_code == 503
    assert emu.count("datasources") == 2
    assert emu.count("gateway_datasource_status") == 1


def test_gateways_and_datasources_seed_from_a_scenario(emu: Emulator, api: Any) -> None:
    emu.seed({"gateways": [{"name": "HQ", "online": False}],
              "workspaces": [{"name": "Finance", "datasets": [{"name": "Sales", "datasources": [
                  {"type": "Sql", "server": "sql01", "database": "sales", "gateway": "HQ", "credentials": False},
                  {"type": "OData", "connection_details": {"url": "https://odata.example/svc"}}]}]}]})
    ds = emu.state.dataset("Sales")
    assert [(s.datasource_type, s.gateway_id is not None, s.credentials) for s in ds.datasources] == [
        ("Sql", True, False), ("OData", False, True)]
    assert emu.gateway("HQ").online is False
    with pytest.raises(ValueError, match="Unknown key"):
        emu.seed({"workspaces": [{"name": "W", "datasets": [{"name": "D", "datasources": [{"kind": "Sql"}]}]}]})
    with pytest.raises(ValueError, match="No emulated gateway"):
        emu.add_datasource(ds.id, gateway="Nowhere")
