"""Unit tests for the dataflow calls of pbi_taskflow.client.api: request building, parsing and error wording."""

from __future__ import annotations

import pytest

from pbi_taskflow.client import api
from pbi_taskflow.client.models import DataflowInfo, DataflowTransaction, RefreshStatus, UpstreamDataflow
from pbi_taskflow.client.names import pick
from pbi_taskflow.errors import AmbiguousNameError, NotFoundError, RefreshAlreadyRunningError, UnknownNameError

WS = "11111111-1111-1111-1111-111111111111"
DF = "33333333-3333-3333-3333-333333333333"
#: a transaction id as Microsoft's example spells it
TX = "2020-08-27T16:07:47.2487692Z@8dbd8c92-4d16-4947-8329-4172f04f4f93$2"


def test_requests_paths_and_retry_rules() -> None:
    """Paths, bodies and endpoint names; only the refresh POST is not idempotent; the transaction id is encoded."""
    refresh = api.trigger_dataflow_refresh(WS, DF, "MailOnFailure", dataflow="Sales ETL")
    assert (refresh.method, refresh.path, refresh.endpoint, refresh.json, refresh.idempotent) == (
        "POST", f"/groups/{WS}/dataflows/{DF}/refreshes", "dataflow_refresh", {"notifyOption": "MailOnFailure"}, False)
    assert (refresh.ids, refresh.dataflow, refresh.dataset) == ((WS, DF), "Sales ETL", None)
    reads = [api.list_dataflows(WS), api.dataflow_transactions(WS, DF), api.dataflow_upstream_dataflows(WS, DF),
             api.dataset_upstream_dataflows(WS), api.cancel_dataflow_transaction(WS, TX)]
    assert [(r.method, r.path, r.endpoint, r.idempotent) for r in reads] == [
        ("GET", f"/groups/{WS}/dataflows", "dataflows", True),
        ("GET", f"/groups/{WS}/dataflows/{DF}/transactions", "dataflow_transactions", True),
        ("GET", f"/groups/{WS}/dataflows/{DF}/upstreamDataflows", "dataflow_upstream_dataflows", True),
        ("GET", f"/groups/{WS}/datasets/upstreamDataflows", "dataset_upstream_dataflows", True),
        ("POST", (f"/groups/{WS}/dataflows/transactions/2020-08-27T16%3A07%3A47.2487692Z%408dbd8c92-4d16-4947-8329-"
                 "4172f04f4f93%242/cancel"), "dataflow_cancel", True),
    ]


def test_dataflows_and_transactions_parse_microsofts_examples() -> None:
    """The swagger's example bodies: dataflows by objectId, transactions with or without a status."""
    dataflows = api.parse_dataflows({"value": [
        {"objectId": DF, "name": "AdventureWorks", "description": "Our Adventure Works",
         "modelUrl": "https://MyDataflowStorageAccount.dfs.core.windows.net/powerbi/contoso/AdventureWorks/model.json"},
        {"name": "no id"}]}, WS)
    assert dataflows == [DataflowInfo(DF, "AdventureWorks", WS, "Our Adventure Works", None)]
    transactions = api.parse_transactions({"value": [
        {"id": TX, "refreshType": "OnDemand", "startTime": "2020-08-27T16:07:47.248Z",
         "endTime": "2020-08-27T16:09:00.000Z", "status": "Success"},
        {"id": "t2", "status": "InProgress", "startTime": "2020-08-28T10:00:00.000Z"},
        {"id": "t3"}, {"refreshType": "no id"}]})
    assert transactions == [
        DataflowTransaction(TX, RefreshStatus.COMPLETED, "Success", "OnDemand", "2020-08-27T16:07:47.248000+00:00",
                            "2020-08-27T16:09:00.000000+00:00"),
        DataflowTransaction("t2", RefreshStatus.IN_PROGRESS, "InProgress", None, "2020-08-28T10:00:00.000000+00:00"),
        DataflowTransaction("t3", RefreshStatus.UNKNOWN),
    ]
    assert [t.status.is_terminal for t in transactions] == [True, False, False]
    assert [s.status for s in api.parse_transactions({"value": [{"id": "a", "status": "Failed"},
                                                                {"id": "b", "status": "Cancelled"}]})] == [
        RefreshStatus.FAILED, RefreshStatus.CANCELLED]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"transactionId": TX, "status": "SuccessfullyMarked"}, "successfullyMarked", id="example-case"),
        pytest.param({"transactionId": TX, "status": "alreadyConcluded"}, "alreadyConcluded", id="swagger-case"),
        pytest.param({"status": "Pending"}, "Pending", id="unknown-kept"),
        pytest.param(None, None, id="no-body"),
    ],
)
def test_cancel_status_is_spelled_as_the_swagger_enum(body: object, expected: str | None) -> None:
    assert api.parse_cancel_status(body) == expected


def test_lineage_links_parse() -> None:
    ds, other_ws = "44444444-4444-4444-4444-444444444444", "55555555-5555-5555-5555-555555555555"
    links = api.parse_dataset_dataflow_links({"value": [
        {"datasetObjectId": ds, "dataflowObjectId": DF, "workspaceObjectId": other_ws},
        {"datasetObjectId": ds}]})
    assert links == [UpstreamDataflow(ds, DF, other_ws)]
    upstream = api.parse_upstream_dataflows({"value": [{"targetDataflowId": DF, "groupId": WS}, {"groupId": WS}]},
                                            "reader")
    assert upstream == [UpstreamDataflow("reader", DF, WS)]
    assert api.parse_upstream_dataflows({}, "reader") == []


def test_errors_name_the_dataflow() -> None:
    """An error answer to a dataflow call names the dataflow (not a dataset); 'already executing' is its own error."""
    request = api.trigger_dataflow_refresh(WS, DF, dataflow="Sales ETL", workspace="Finance")
    body = {"error": {"code": "InvalidRequest", "message": "Invalid dataflow refresh request. Another refresh request "
                      "is already executing"}}
    with pytest.raises(RefreshAlreadyRunningError) as running:
        api.check(api.ApiResponse(400, {}, body), request)
    assert "for dataflow 'Sales ETL' in workspace 'Finance'" in str(running.value)
    assert "Another refresh of this dataflow is running" in str(running.value)
    assert running.value.dataset is None
    with pytest.raises(NotFoundError, match="read dataflow transactions failed for dataflow 'x'"):
        api.check(api.ApiResponse(404, {}, {"error": {"code": "ItemNotFound"}}),
                  api.dataflow_transactions(WS, DF, dataflow="x"))


def test_pick_speaks_of_dataflows() -> None:
    items = [DataflowInfo(DF, "Sales ETL", WS), DataflowInfo("66666666-6666-6666-6666-666666666666", "sales etl", WS)]
    assert pick(items, DF, kind="dataflow", container="Finance") is items[0]
    with pytest.raises(AmbiguousNameError, match="The dataflow name 'Sales ETL' in workspace 'Finance'") as ambiguous:
        pick(items, "Sales ETL", kind="dataflow", container="Finance")
    assert (ambiguous.value.workspace, ambiguous.value.dataset) == ("Finance", None)
    with pytest.raises(UnknownNameError, match=r"No dataflow with a name 'Sales'.*Closest names: 'Sales ETL'"):
        pick(items, "Sales", kind="dataflow", container="Finance")
