"""powerbi_context() against the emulator: errors name the dataset and workspace, not their ids."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.airflow.context import PowerBIContext
from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.errors import NotFoundError

pytestmark = pytest.mark.integration


def test_history_errors_name_the_dataset_and_workspace(emulator: Any, clean_env: None) -> None:
    """A failing history read through powerbi_context() says "dataset 'Revenue' in workspace 'Sales'"."""
    workspace = emulator.add_workspace("Sales")
    dataset = emulator.add_dataset("Sales", "Revenue")
    client = ConnectionSettings.from_mapping(emulator.airflow_conn(), conn_id="powerbi_default").build_client()
    with client:
        pbi = PowerBIContext(workspace="Sales", client=client)
        emulator.inject("history", "error", status=404)
        with pytest.raises(NotFoundError) as info:
            pbi.last_refresh("revenue")
    text = str(info.value)
    assert "dataset 'Revenue' in workspace 'Sales'" in text
    assert dataset["id"] not in text
    assert workspace["id"] not in text


def test_upstream_and_lineage_show_what_a_model_reads(emulator: Any, clean_env: None) -> None:
    """powerbi_context().upstream() names the dataflows a model reads, across workspaces, and lineage() the graph."""
    emulator.add_workspace("Sales")
    emulator.add_workspace("Ingest")
    emulator.add_dataset("Sales", "Revenue")
    emulator.add_dataset("Sales", "Revenue Composite")
    emulator.add_dataflow("Ingest", "Orders ETL")
    emulator.link_dataset("Sales", "Revenue", ["Orders ETL"])
    emulator.link_model("Revenue Composite", ["Revenue"])
    client = ConnectionSettings.from_mapping(emulator.airflow_conn(), conn_id="powerbi_default").build_client()
    with client:
        pbi = PowerBIContext(workspace="Sales", client=client)
        [flow] = pbi.upstream("revenue")
        assert (flow.item, flow.name, flow.workspace_name) == ("dataflow", "Orders ETL", "Ingest")
        [model] = pbi.upstream("Revenue Composite")
        assert (model.item, model.name) == ("dataset", "Revenue")
        assert pbi.lineage().render()[0] == "depth 0: dataflow 'Orders ETL' (Ingest)"
        reads = len(emulator.requests)
        assert pbi.upstream("Revenue") == [flow]
        assert len(emulator.requests) == reads  # the graph is read once per context
