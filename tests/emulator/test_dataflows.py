"""Dataflows in the emulator: listing, export, refresh transactions on the emulated clock, cancel, lineage links,
seeding, faults and the request log; every body validates against Microsoft's swagger."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from pbi_taskflow.emulator import Emulator

from .test_swagger import _check, swagger

__all__ = ["swagger"]  # the swagger fixture, shared with test_swagger.py


@pytest.fixture
def flows(emu: Emulator) -> dict[str, Any]:
    """Raw Ingest (Landing) <- Sales ETL (Finance) <- dataset Sales (Finance); returns ids and base URLs."""
    landing = emu.add_workspace("Landing")
    finance = emu.add_workspace("Finance")
    raw = emu.add_dataflow("Landing", "Raw Ingest", duration=4)
    etl = emu.add_dataflow("Finance", "Sales ETL", duration=6, upstream=["Raw Ingest"], description="Cleans sales")
    sales = emu.add_dataset("Finance", "Sales")
    emu.link_dataset("Finance", "Sales", upstream_dataflows=["Sales ETL", raw["id"]])
    groups = f"{emu.api_root}/groups"
    return {"landing": landing["id"], "finance": finance["id"], "raw": raw["id"], "etl": etl["id"],
            "sales": sales["id"], "groups": groups, "etl_url": f"{groups}/{finance['id']}/dataflows/{etl['id']}"}


def _refresh(api: Any, url: str, notify: str = "NoNotification") -> Any:
    return api.post(f"{url}/refreshes", json={"notifyOption": notify})


def _transactions(api: Any, url: str) -> list[dict[str, Any]]:
    answer = api.get(f"{url}/transactions")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["value"])


def test_listing_export_and_links_match_the_swagger(swagger: dict[str, Any], emu: Emulator, api: Any,
                                                    flows: dict[str, Any]) -> None:
    """The dataflow list, the lineage links of datasets and dataflows validate; ``datasets/upstreamDataflows`` is
    the links route, not a dataset id."""
    listing = api.get(f"{flows['groups']}/{flows['finance']}/dataflows").json()
    _check(swagger, "Dataflows", listing)
    assert [(d["objectId"], d["name"], d["description"]) for d in listing["value"]] == [
        (flows["etl"], "Sales ETL", "Cleans sales")]
    links = api.get(f"{flows['groups']}/{flows['finance']}/datasets/upstreamDataflows").json()
    _check(swagger, "DatasetToDataflowLinksResponse", links)
    assert [(x["datasetObjectId"], x["dataflowObjectId"], x["workspaceObjectId"]) for x in links["value"]] == [
        (flows["sales"], flows["etl"], flows["finance"]), (flows["sales"], flows["raw"], flows["landing"])]
    upstream = api.get(f"{flows['etl_url']}/upstreamDataflows").json()
    _check(swagger, "DependentDataflows", upstream)
    assert upstream["value"] == [{"targetDataflowId": flows["raw"], "groupId": flows["landing"]}]
    raw_url = f"{flows['groups']}/{flows['landing']}/dataflows/{flows['raw']}"
    assert api.get(f"{raw_url}/upstreamDataflows").json()["value"] == []
    exported = api.get(flows["etl_url"])
    assert exported.status_code == 200
    assert (exported.json()["name"], exported.json()["entities"]) == ("Sales ETL", [])


def test_a_refresh_runs_for_its_duration_and_refuses_a_second_one(swagger: dict[str, Any], emu: Emulator,
                                                                   api: Any, flows: dict[str, Any]) -> None:
    """POST answers 200 without a body; the transaction is InProgress, then Success with an end; a POST while it
    runs answers 400 "already executing"."""
    started = _refresh(api, flows["etl_url"], "MailOnFailure")
    assert (started.status_code, started.content) == (200, b"")
    running = api.get(f"{flows['etl_url']}/transactions").json()
    _check(swagger, "DataflowTransactions", running)
    (entry,) = running["value"]
    assert (entry["status"], entry["refreshType"], "endTime" in entry) == ("InProgress", "OnDemand", False)
    refused = _refresh(api, flows["etl_url"])
    assert refused.status_code == 400
    assert "already executing" in refused.json()["error"]["message"]
    _check(swagger, "PowerBIApiErrorResponseDetail", refused.json()["error"])
    emu.advance(7)
    done = api.get(f"{flows['etl_url']}/transactions").json()
    _check(swagger, "DataflowTransactions", done)
    assert [(t["id"], t["status"], "endTime" in t) for t in done["value"]] == [(entry["id"], "Success", True)]
    assert _refresh(api, flows["etl_url"]).status_code == 200
    assert [t["status"] for t in _transactions(api, flows["etl_url"])] == ["InProgress", "Success"]
    transaction = emu.dataflow("Sales ETL").history()[1]
    assert (transaction.caller, transaction.notify_option) == (emu.client_id, "MailOnFailure")


def test_configured_outcomes_history_and_external_refreshes(emu: Emulator, api: Any, flows: dict[str, Any]) -> None:
    """Outcomes come from the dataflow's knobs; seeded history and a foreign refresh are listed newest first."""
    emu.add_dataflow_history("Sales ETL", status="Failed", ago=7200, duration=60)
    emu.set_dataflow_refresh("Sales ETL", duration=2, outcome="failed")
    assert _refresh(api, flows["etl_url"]).status_code == 200
    emu.advance(3)
    foreign = emu.start_external_dataflow_refresh("Sales ETL", duration=10, outcome="Cancelled")
    with pytest.raises(ValueError, match="already has a refresh running"):
        emu.start_external_dataflow_refresh("Sales ETL")
    listed = _transactions(api, flows["etl_url"])
    assert [(t["status"], t["refreshType"]) for t in listed] == [
        ("InProgress", "Scheduled"), ("Failed", "OnDemand"), ("Failed", "Scheduled")]
    assert listed[0]["id"] == foreign["id"]
    emu.advance(11)
    assert _transactions(api, flows["etl_url"])[0]["status"] == "Cancelled"


def test_cancel_marks_a_running_transaction_and_reports_others(swagger: dict[str, Any], emu: Emulator, api: Any,
                                                               flows: dict[str, Any]) -> None:
    """Cancel answers successfullyMarked (the refresh ends Cancelled at once), then alreadyConcluded; an unknown or
    other workspace's transaction is notFound. The id travels percent-encoded, as clients send it."""
    _refresh(api, flows["etl_url"])
    (entry,) = _transactions(api, flows["etl_url"])
    cancel = f"{flows['groups']}/{flows['finance']}/dataflows/transactions/{quote(entry['id'], safe='')}/cancel"
    answers = [api.post(cancel), api.post(cancel),
               api.post(f"{flows['groups']}/{flows['landing']}/dataflows/transactions/"
                        f"{quote(entry['id'], safe='')}/cancel"),
               api.post(f"{flows['groups']}/{flows['finance']}/dataflows/transactions/nope/cancel")]
    for answer in answers:
        assert answer.status_code == 200
        _check(swagger, "DataflowTransactionStatus", answer.json())
    assert [a.json()["status"] for a in answers] == ["successfullyMarked", "alreadyConcluded", "notFound", "notFound"]
    assert answers[0].json()["transactionId"] == entry["id"]
    (after,) = _transactions(api, flows["etl_url"])
    assert (after["status"], "endTime" in after) == ("Cancelled", True)
    assert _refresh(api, flows["etl_url"]).status_code == 200  # nothing runs any more


@pytest.mark.parametrize(
    ("body", "query", "fragment"),
    [
        pytest.param(None, {}, "needs a body with notifyOption", id="no-body"),
        pytest.param({"notifyOption": "MailOnCompletion"}, {}, "MailOnCompletion is not supported", id="completion"),
        pytest.param({"notifyOption": "NoNotification", "type": "Full"}, {}, "Unknown field", id="extra-field"),
        pytest.param({"notifyOption": "NoNotification"}, {"processType": "fast"}, "processType", id="process-type"),
    ],
)
def test_refresh_requests_power_bi_refuses(swagger: dict[str, Any], emu: Emulator, api: Any, flows: dict[str, Any],
                                           body: Any, query: dict[str, str], fragment: str) -> None:
    """A malformed refresh request answers 400 and starts nothing."""
    answer = api.post(f"{flows['etl_url']}/refreshes", json=body, params=query)
    assert answer.status_code == 400
    assert fragment in answer.json()["error"]["message"]
    _check(swagger, "PowerBIApiErrorResponseDetail", answer.json()["error"])
    assert _transactions(api, flows["etl_url"]) == []
    assert api.post(f"{flows['etl_url']}/refreshes", json={"notifyOption": "NoNotification"},
                    params={"processType": "processFull"}).status_code == 200


def test_unknown_items_and_members(swagger: dict[str, Any], emu: Emulator, api: Any, flows: dict[str, Any]) -> None:
    """An unknown dataflow is 404 ItemNotFound, an unknown workspace 404 PowerBIEntityNotFound, a workspace of other
    members 401."""
    emu.add_workspace("Private", members=["11111111-2222-3333-4444-555555555555"])
    private = emu.state.workspace("Private").id
    answers = [
        api.get(f"{flows['groups']}/{flows['finance']}/dataflows/00000000-0000-0000-0000-000000000000/transactions"),
        _refresh(api, f"{flows['groups']}/{flows['finance']}/dataflows/{flows['raw']}"),
        api.get(f"{flows['groups']}/00000000-0000-0000-0000-000000000000/dataflows"),
        api.get(f"{flows['groups']}/{private}/datasets/upstreamDataflows"),
    ]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [
        (404, "ItemNotFound"), (404, "ItemNotFound"), (404, "PowerBIEntityNotFound"),
        (401, "PowerBINotAuthorizedException")]
    for answer in answers:
        _check(swagger, "PowerBIApiErrorResponseDetail", answer.json()["error"])


def test_faults_and_the_request_log_name_the_dataflow_endpoints(emu: Emulator, api: Any,
                                                                 flows: dict[str, Any]) -> None:
    """Faults apply to the dataflow endpoints by name (and workspace); the log records each endpoint's name."""
    emu.inject("dataflow_transactions", "throttle", retry_after=3)
    emu.inject("dataflow_refresh", "drop_after")
    emu.inject("dataflows", "error", status=503, workspace="Landing")
    throttled = api.get(f"{flows['etl_url']}/transactions")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "3")
    with pytest.raises(requests.ConnectionError):
        _refresh(api, flows["etl_url"])
    assert [t["status"] for t in _transactions(api, flows["etl_url"])] == ["InProgress"]  # it started all the same
    assert api.get(f"{flows['groups']}/{flows['finance']}/dataflows").status_code == 200
    assert api.get(f"{flows['groups']}/{flows['landing']}/dataflows").status_code == 503
    api.get(f"{flows['etl_url']}/upstreamDataflows")
    api.get(f"{flows['groups']}/{flows['finance']}/datasets/upstreamDataflows")
    api.get(flows["etl_url"])
    api.post(f"{flows['groups']}/{flows['finance']}/dataflows/transactions/x/cancel")
    logged = [(r.endpoint, r.status, r.fault) for r in emu.requests if r.endpoint.startswith(("data", "dataflow"))]
    assert logged == [
        ("dataflow_transactions", 429, "throttle"), ("dataflow_refresh", None, "drop_after"),
        ("dataflow_transactions", 200, None), ("dataflows", 200, None), ("dataflows", 503, "error"),
        ("dataflow_upstream_dataflows", 200, None), ("dataset_upstream_dataflows", 200, None),
        ("dataflow", 200, None), ("dataflow_cancel", 200, None)]
    assert next(r.body for r in emu.requests if r.endpoint == "dataflow_refresh") == {"notifyOption": "NoNotification"}
    with pytest.raises(ValueError, match="applies only to"):
        emu.inject("dataflow_refresh", "lost")


def test_seed_dataflows_links_and_history_from_yaml(emu: Emulator, api: Any, tmp_path: Path) -> None:
    """Scenario workspaces take ``dataflows`` (upstream may name one seeded later) and datasets
    ``upstream_dataflows``."""
    scenario = tmp_path / "chain.yaml"
    scenario.write_text(
        "workspaces:\n"
        "  - name: Finance\n"
        "    datasets:\n"
        "      - {name: Sales, upstream_dataflows: [Sales ETL]}\n"
        "    dataflows:\n"
        "      - name: Sales ETL\n"
        "        duration: 30\n"
        "        outcome: Failed\n"
        "        upstream: [Raw Ingest]\n"
        "        transactions:\n"
        "          - {status: Success, ago: 600, duration: 45, refresh_type: Scheduled}\n"
        "  - name: Landing\n"
        "    dataflows:\n"
        "      - {name: Raw Ingest, id: 88888888-0000-0000-0000-000000000001}\n",
        encoding="utf-8",
    )
    emu.seed(scenario)
    etl = emu.dataflow("Sales ETL")
    assert (etl.duration, etl.outcome) == (30.0, "Failed")
    assert etl.upstream == [(emu.state.workspace("Landing").id, "88888888-0000-0000-0000-000000000001")]
    assert emu.state.dataset("Sales").upstream_dataflows == [(etl.workspace_id, etl.id)]
    url = f"{emu.api_root}/groups/{etl.workspace_id}/dataflows/{etl.id}"
    assert [(t["status"], t["refreshType"]) for t in _transactions(api, url)] == [("Success", "Scheduled")]


@pytest.mark.parametrize(
    ("scenario", "fragment"),
    [
        pytest.param({"workspaces": [{"name": "W", "dataflows": [{"name": "F", "schedule": "daily"}]}]}, "schedule",
                     id="unknown-key"),
        pytest.param({"workspaces": [{"name": "W", "dataflows": [{"name": "F", "outcome": "Completed"}]}]},
                     "Completed", id="bad-outcome"),
        pytest.param({"workspaces": [{"name": "W", "dataflows": [{"name": "F", "upstream": ["Nope"]}]}]}, "Nope",
                     id="unknown-upstream"),
        pytest.param({"workspaces": [{"name": "W", "dataflows": [{"name": "F", "upstream": ["F"]}]}]},
                     "cannot read itself", id="self-link"),
    ],
)
def test_bad_dataflow_scenarios_are_refused(emu: Emulator, scenario: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        emu.seed(scenario)


def test_seeding_checks_ids_names_and_links(emu: Emulator) -> None:
    """Duplicate ids, names used in several workspaces and unknown datasets are refused naming the problem."""
    emu.add_workspace("A")
    emu.add_workspace("B")
    first = emu.add_dataflow("A", "Shared", id="99999999-0000-0000-0000-000000000001")
    with pytest.raises(ValueError, match="already exists"):
        emu.add_dataflow("B", "Other", id=first["id"])
    emu.add_dataflow("B", "Shared")
    with pytest.raises(ValueError, match="several dataflows named 'Shared'"):
        emu.add_dataflow("B", "Reader", upstream=["Shared"])
    emu.add_dataflow("B", "Reader", upstream=[first["id"]])
    emu.link_dataflow("B", "Reader", [first["id"]])  # a repeated link is kept once
    assert emu.dataflow("Reader").upstream == [(emu.state.workspace("A").id, first["id"])]
    with pytest.raises(ValueError, match="No emulated dataset 'Sales'"):
        emu.link_dataset("A", "Sales", upstream_dataflows=[first["id"]])
    with pytest.raises(ValueError, match="must be >= 0"):
        emu.set_dataflow_refresh("Reader", duration=-1)
