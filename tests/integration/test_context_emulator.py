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
