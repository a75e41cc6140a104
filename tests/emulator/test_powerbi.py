"""Power BI listing routes of the emulator: groups with OData options, datasets, dataset, 404 bodies, RequestId."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator


@pytest.fixture
def workspaces(emu: Emulator) -> dict[str, str]:
    names = ["Sales Analytics", "sales analytics (dev)", "Finance", "O'Brien Reports", "Marketing"]
    return {name: emu.add_workspace(name, dedicated=name != "Marketing")["id"] for name in names}


def _names(api: Any, emu: Emulator, **params: Any) -> list[str]:
    answer = api.get(f"{emu.api_root}/groups", params=params)
    assert answer.status_code == 200, answer.text
    return [g["name"] for g in answer.json()["value"]]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("name eq 'Sales Analytics'", ["Sales Analytics"], id="eq-exact"),
        pytest.param("name eq 'sales analytics'", [], id="eq-case-sensitive"),
        pytest.param("tolower(name) eq 'sales analytics'", ["Sales Analytics"], id="tolower"),
        pytest.param("contains(name,'ales')", ["Sales Analytics", "sales analytics (dev)"], id="contains"),
        pytest.param("name eq 'O''Brien Reports'", ["O'Brien Reports"], id="doubled-quote"),
        pytest.param("contains(name,'Fin') or name eq 'Marketing'", ["Finance", "Marketing"], id="or"),
        pytest.param("isOnDedicatedCapacity eq false", ["Marketing"], id="boolean"),
    ],
)
def test_groups_filter(emu: Emulator, api: Any, workspaces: dict[str, str], expression: str,
                       expected: list[str]) -> None:
    """``$filter`` supports eq, tolower(), contains(), or, booleans and doubled-quote escaping."""
    assert _names(api, emu, **{"$filter": expression}) == expected


def test_groups_top_and_skip_page_the_list(emu: Emulator, api: Any, workspaces: dict[str, str]) -> None:
    """``$top``/``$skip`` page the list in a stable order, and the body has the OData wrapper."""
    every = _names(api, emu)
    assert every == list(workspaces)
    assert _names(api, emu, **{"$top": 2}) == every[:2]
    assert _names(api, emu, **{"$top": 2, "$skip": 2}) == every[2:4]
    body = api.get(f"{emu.api_root}/groups").json()
    assert body["@odata.context"].endswith("$metadata#groups")


def test_invalid_filter_and_top_answer_400(emu: Emulator, api: Any, workspaces: dict[str, str]) -> None:
    """A filter the emulator cannot parse, or a bad $top, answers 400 InvalidRequest naming the problem."""
    bad = api.get(f"{emu.api_root}/groups", params={"$filter": "name gt 'a'"})
    assert bad.status_code == 400
    assert "gt" in bad.json()["error"]["message"]
    assert api.get(f"{emu.api_root}/groups", params={"$top": "zero"}).status_code == 400


def test_group_document_reflects_capacity(emu: Emulator, api: Any, workspaces: dict[str, str]) -> None:
    """Dedicated workspaces carry isOnDedicatedCapacity and a capacityId; shared ones do not."""
    groups = {g["name"]: g for g in api.get(f"{emu.api_root}/groups").json()["value"]}
    assert groups["Finance"]["isOnDedicatedCapacity"] is True
    assert "capacityId" in groups["Finance"]
    assert groups["Marketing"]["isOnDedicatedCapacity"] is False
    assert "capacityId" not in groups["Marketing"]


def test_datasets_and_dataset(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """The datasets list and the dataset document carry id, name and isRefreshable."""
    emu.add_dataset(sales["ws"], "Live", refreshable=False)
    listing = api.get(f"{emu.api_root}/groups/{sales['ws']}/datasets").json()["value"]
    assert [(d["name"], d["isRefreshable"]) for d in listing] == [("Sales", True), ("Live", False)]
    one = api.get(sales["base"]).json()
    assert (one["id"], one["name"]) == (sales["ds"], "Sales")


def test_unknown_workspace_is_404_power_bi_entity_not_found(emu: Emulator, api: Any) -> None:
    """An unknown group id answers 404 PowerBIEntityNotFound."""
    answer = api.get(f"{emu.api_root}/groups/00000000-0000-0000-0000-000000000000/datasets")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "PowerBIEntityNotFound"


def test_unknown_dataset_is_404_item_not_found(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """An unknown dataset id answers 404 ItemNotFound "Dataset {id} is not found!"."""
    missing = "00000000-0000-0000-0000-000000000001"
    for url in (f"{emu.api_root}/groups/{sales['ws']}/datasets/{missing}",
                f"{emu.api_root}/groups/{sales['ws']}/datasets/{missing}/refreshes"):
        answer = api.get(url)
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert error["code"] == "ItemNotFound"
        assert error["message"].startswith(f"Dataset {missing} is not found!")


def test_every_response_carries_a_request_id(emu: Emulator, api: Any, sales: dict[str, str]) -> None:
    """Successes, errors and unknown routes all carry a RequestId header."""
    for url in (f"{emu.api_root}/groups", sales["base"], f"{emu.api_root}/groups/x/datasets", f"{emu.url}/nowhere"):
        assert api.get(url).headers.get("RequestId")
    assert all(r.request_id for r in emu.requests)


def test_workspace_members_restrict_access(emu: Emulator, api: Any) -> None:
    """A workspace with members hides from other apps and answers them 401 PowerBINotAuthorizedException."""
    import requests

    from .helpers import token

    other = "12121212-0000-0000-0000-000000000001"
    emu.add_app(other, secret="other-secret")
    ws = emu.add_workspace("Restricted", members=[emu.client_id])
    emu.add_dataset("Restricted", "Secret Model")
    outsider = requests.Session()
    outsider.headers["Authorization"] = f"Bearer {token(emu, 'other-secret', client_id=other)}"
    assert [g["name"] for g in api.get(f"{emu.api_root}/groups").json()["value"]] == ["Restricted"]
    assert outsider.get(f"{emu.api_root}/groups").json()["value"] == []
    denied = outsider.get(f"{emu.api_root}/groups/{ws['id']}/datasets")
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "PowerBINotAuthorizedException"
    assert api.get(f"{emu.api_root}/groups/{ws['id']}/datasets").status_code == 200
