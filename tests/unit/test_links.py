"""Operator extra links and the summary log's portal links, from the task's result records."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.airflow.links import (
    PowerBIDatasetLink,
    PowerBIWorkspaceLink,
    dataset_link,
    records_of,
    workspace_link,
)
from pbi_taskflow.client.clouds import get_cloud
from pbi_taskflow.client.models import RefreshResult, RefreshStatus
from pbi_taskflow.observability.status_log import summary_table

WS, WS2 = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"
DS1, DS2 = "dddddddd-0000-0000-0000-000000000001", "dddddddd-0000-0000-0000-000000000002"


def _record(dataset_id: str = DS1, status: str = "Completed", *, workspace_id: str = WS, cloud: str = "public",
            name: str = "Revenue") -> dict[str, Any]:
    return RefreshResult(
        workspace_id=workspace_id, workspace_name="Sales", dataset_id=dataset_id, dataset_name=name,
        refresh_id="r-1", kind="enhanced", status=RefreshStatus.parse(status),
        web_url=get_cloud(cloud).dataset_url(workspace_id, dataset_id),
    ).to_dict()


def test_one_model_links_to_it_and_its_workspace() -> None:
    """One refreshed model: its portal page and its workspace's."""
    records = [_record()]
    assert dataset_link(records) == f"https://app.powerbi.com/groups/{WS}/datasets/{DS1}/details"
    assert workspace_link(records) == f"https://app.powerbi.com/groups/{WS}/list"


@pytest.mark.parametrize(
    ("cloud", "host"),
    [("usgov", "app.powerbigov.us"), ("usgovhigh", "app.high.powerbigov.us"), ("usgovdod", "app.mil.powerbigov.us"),
     ("china", "app.powerbi.cn")],
)
def test_sovereign_clouds_link_to_their_own_portal(cloud: str, host: str) -> None:
    """The links follow the portal of the connection's cloud, carried by the records' web_url."""
    records = [_record(cloud=cloud)]
    assert dataset_link(records) == f"https://{host}/groups/{WS}/datasets/{DS1}/details"
    assert workspace_link(records) == f"https://{host}/groups/{WS}/list"


def test_several_models_link_to_the_first_that_failed() -> None:
    """Several models: the model link opens the first that did not succeed; the workspace is its workspace."""
    records = [_record(DS1), _record(DS2, "Failed", workspace_id=WS2, name="Costs")]
    assert dataset_link(records) == f"https://app.powerbi.com/groups/{WS2}/datasets/{DS2}/details"
    assert workspace_link(records) == f"https://app.powerbi.com/groups/{WS2}/list"


def test_several_models_all_refreshed_link_to_the_workspace_only() -> None:
    """Several models that all succeeded: no single model to open (the log lists them); the workspace link stays."""
    records = [_record(DS1), _record(DS2, "Skipped", name="Costs")]
    assert dataset_link(records) == ""
    assert workspace_link(records) == f"https://app.powerbi.com/groups/{WS}/list"


@pytest.mark.parametrize("value", [None, [], "text", 3, [{"dataset_id": DS1}], [{"web_url": "x"}], {"a": 1}])
def test_no_records_no_link(value: Any) -> None:
    """A task that ended before any result (or an XCom of another shape) gives no link, without raising."""
    records = records_of(value)
    assert records == []
    assert dataset_link(records) == ""
    assert workspace_link(records) == ""


def test_only_https_portal_urls_are_linked() -> None:
    """A record whose web_url is not an https URL gives no link (nothing else is put on a button)."""
    record = {**_record(), "web_url": "javascript:alert(1)"}
    assert dataset_link([record]) == ""
    assert workspace_link([record]) == ""


def test_links_read_the_return_value_xcom(mocker: Any) -> None:
    """get_link reads the task's return_value XCom for its ti_key; an XCom error gives no link, never raises."""
    from airflow.sdk.execution_time.xcom import XCom

    key = object()
    get_value = mocker.patch.object(XCom, "get_value", return_value=[_record()])
    assert PowerBIDatasetLink().get_link(None, ti_key=key).endswith(f"/datasets/{DS1}/details")
    get_value.assert_called_with(ti_key=key, key="return_value")
    get_value.side_effect = RuntimeError("no supervisor")
    assert PowerBIWorkspaceLink().get_link(None, ti_key=key) == ""


def test_operator_declares_both_links() -> None:
    """The refresh operator (and so @powerbi_refresh tasks) shows both buttons; the provider lists them."""
    from pbi_taskflow.airflow.operator import PowerBIRefreshOperator
    from pbi_taskflow.airflow.provider_info import get_provider_info

    names = [link.name for link in PowerBIRefreshOperator.operator_extra_links]
    assert names == ["Power BI semantic model", "Power BI workspace"]
    assert get_provider_info()["extra-links"] == [
        "pbi_taskflow.airflow.links.PowerBIDatasetLink", "pbi_taskflow.airflow.links.PowerBIWorkspaceLink",
    ]


def test_summary_log_lists_every_models_portal_page() -> None:
    """The end-of-task summary ends with each model's portal page."""
    table = summary_table([_record(DS1), _record(DS2, "Failed", name="Costs")])
    lines = table.splitlines()
    assert lines[-3] == "Open in Power BI:"
    assert lines[-2] == f"  Sales / Revenue: https://app.powerbi.com/groups/{WS}/datasets/{DS1}/details"
    assert lines[-1] == f"  Sales / Costs: https://app.powerbi.com/groups/{WS}/datasets/{DS2}/details"
