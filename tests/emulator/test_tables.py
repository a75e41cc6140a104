"""Tables and partitions: seeded per dataset (API and scenario file), checked by enhanced refreshes, listed by
``GET .../tables``; faults per workspace; the request log shows which tables were sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator


def test_an_enhanced_refresh_naming_a_missing_table_or_partition_is_refused_with_400(
        emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """Once a dataset has tables, a misspelt table or partition gets 400 InvalidRequest naming it; nothing starts."""
    emu.set_tables("Sales", {"Orders": ["Orders-2024", "Orders-2025"], "Customers": None})
    url = f"{sales['base']}/refreshes"
    misspelt = api.post(url, json={"type": "Full", "objects": [{"table": "Customers"}, {"table": "Ordres"}]})
    assert misspelt.status_code == 400
    error = misspelt.json()["error"]
    assert error["code"] == "InvalidRequest"
    assert "table 'Ordres'" in error["message"]
    partition = api.post(url, json={"objects": [{"table": "Orders", "partition": "Orders-2026"}]})
    assert partition.status_code == 400
    assert "partition 'Orders-2026' of table 'Orders'" in partition.json()["error"]["message"]
    default_partition = api.post(url, json={"objects": [{"table": "Customers", "partition": "Nope"}]})
    assert "partition 'Nope' of table 'Customers'" in default_partition.json()["error"]["message"]
    assert emu.state.dataset("Sales").runs == []
    ok = api.post(url, json={"objects": [{"table": "orders", "partition": "ORDERS-2025"}, {"table": "Customers"}]})
    assert ok.status_code == 202  # names compare without case, as in Analysis Services
    assert len(emu.state.dataset("Sales").runs) == 1


def test_without_seeded_tables_any_table_is_accepted(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """An unseeded dataset (the default) accepts any table, so tests that do not model tables keep working."""
    answer = api.post(f"{sales['base']}/refreshes", json={"objects": [{"table": "Anything"}]})
    assert answer.status_code == 202
    emu.advance(5)
    emu.set_tables("Sales", ["Orders"])
    assert api.post(f"{sales['base']}/refreshes", json={"objects": [{"table": "Anything"}]}).status_code == 400
    emu.set_tables("Sales", None)
    assert api.post(f"{sales['base']}/refreshes", json={"objects": [{"table": "Anything"}]}).status_code == 202


def test_a_standard_refresh_is_not_checked(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A whole-model refresh names no table, so seeded tables change nothing for it."""
    emu.set_tables("Sales", ["Orders"])
    assert api.post(f"{sales['base']}/refreshes", json={"notifyOption": "NoNotification"}).status_code == 202


def test_tables_are_listed_for_seeded_datasets_only(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """GET .../tables lists seeded tables; an unseeded model is refused as Power BI refuses non-push datasets."""
    refused = api.get(f"{sales['base']}/tables")
    assert refused.status_code == 400
    assert "push dataset" in refused.json()["error"]["message"]
    emu.set_tables("Sales", {"Orders": ["A", "B"], "Customers": []})
    listed = api.get(f"{sales['base']}/tables")
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()["value"]] == ["Orders", "Customers"]


def test_add_dataset_seeds_tables_and_rejects_bad_shapes(emu: Emulator, sales: dict[str, str]) -> None:
    """add_dataset(tables=...) takes names or a table -> partitions mapping and says what is wrong otherwise."""
    emu.add_dataset(sales["ws"], "Finance", tables=["Ledger", "Budget"])
    assert emu.state.dataset("Finance").tables == {"Ledger": ["Ledger"], "Budget": ["Budget"]}
    for bad, fragment in (("Ledger", "must be a list of table names"), ([""], "non-empty string"),
                          ({"Ledger": "2024"}, "must be a list of names"), (["A", "A"], "listed twice")):
        with pytest.raises((TypeError, ValueError), match=fragment):
            emu.set_tables("Finance", bad)


def test_a_scenario_file_seeds_tables(emu: Emulator, api: Any, tmp_path: Path) -> None:
    """`tables:` in a scenario file (a list or a mapping to partitions) seeds them; a typo in it is reported."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("""
workspaces:
  - name: Finance
    datasets:
      - name: Sales
        tables: [Orders, Customers]
      - name: Stock
        tables:
          Levels: [Levels-2024, Levels-2025]
          Sites: []
""")
    emu.seed(scenario)
    assert emu.state.dataset("Sales").tables == {"Orders": ["Orders"], "Customers": ["Customers"]}
    assert emu.state.dataset("Stock").tables == {"Levels": ["Levels-2024", "Levels-2025"], "Sites": ["Sites"]}
    scenario.write_text("workspaces: [{name: Other, datasets: [{name: X, tabels: [A]}]}]\n")
    with pytest.raises(ValueError, match=r"Unknown key.*tabels"):
        emu.seed(scenario)


def test_a_fault_for_one_workspace_spares_the_others(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """``inject(..., workspace=name or id)`` applies only to calls about that workspace."""
    other_ws = emu.add_workspace("Ops")
    other = emu.add_dataset("Ops", "KPIs")
    other_base = f"{emu.api_root}/groups/{other_ws['id']}/datasets/{other['id']}"
    emu.inject("refresh_post", "throttle", workspace="Sales Analytics", retry_after=2)
    assert api.post(f"{other_base}/refreshes").status_code == 202
    assert api.post(f"{sales['base']}/refreshes").status_code == 429
    assert api.post(f"{sales['base']}/refreshes").status_code == 202
    emu.inject("*", "error", status=503, workspace=other_ws["id"])
    assert api.get(f"{emu.api_root}/groups").status_code == 200  # not about a workspace
    assert api.get(f"{emu.api_root}/groups/{other_ws['id']}/datasets").status_code == 503
    with pytest.raises(ValueError, match="about a workspace"):
        emu.inject("groups", "error", workspace="Ops")
    with pytest.raises(ValueError, match="No emulated workspace"):
        emu.inject("history", "error", workspace="Nope")


def test_the_request_log_shows_which_tables_were_sent(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """A test can assert the tables and options a refresh POST carried, from ``emu.requests[...].body``."""
    emu.set_tables("Sales", ["Orders", "Customers"])
    api.post(f"{sales['base']}/refreshes", json={"type": "Full", "objects": [{"table": "Ordres"}]})
    [post] = [r for r in emu.requests if r.endpoint == "refresh_post"]
    assert (post.status, post.body["objects"]) == (400, [{"table": "Ordres"}])
