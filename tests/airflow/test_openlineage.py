"""With Airflow's OpenLineage provider installed, a refresh task's COMPLETE event names the refreshed models.

The provider decides at plugin load whether its listener is on, so the run happens in a fresh pytest
process (a user project using the bundled fixtures) with OpenLineage's file transport configured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT_TEST = '''
import json
import os

from airflow.sdk import dag
from pbi_taskflow import Dataflow, powerbi_refresh


def test_refresh(emulator, pbi_connection, run_dag):
    finance = emulator.add_workspace("Finance")
    sales = emulator.add_dataset("Finance", "Sales", duration=0.2)
    emulator.add_dataset("Finance", "Stock", duration=0.2, outcome="Failed")
    flow = emulator.add_dataflow("Finance", "Sales ETL", duration=0.2)

    @dag(dag_id="ol_refresh", schedule=None)
    def lineage():
        @powerbi_refresh(workspace="Finance", poll_interval=0.1, fail_policy="all")
        def refresh():
            return ["Sales", "Stock", Dataflow("Sales ETL")]

        refresh()

    assert run_dag(lineage()).state == "success"
    with open(os.environ["IDS_FILE"], "w") as ids:
        json.dump({"workspace": finance["id"], "dataset": sales["id"], "dataflow": flow["id"]}, ids)
'''


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_complete_event_lists_the_refreshed_models_as_outputs(tmp_path: Path) -> None:
    """The COMPLETE event of the refresh task has one output per completed model and dataflow, none for the failed
    model."""
    (tmp_path / "test_lineage.py").write_text(textwrap.dedent(PROJECT_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\npbi_taskflow_isolate = true\n")
    events_file, ids_file = tmp_path / "openlineage.jsonl", tmp_path / "ids.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))}
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
        {"type": "file", "log_file_path": str(events_file), "append": True}
    )
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "pbi-taskflow-test"
    env["IDS_FILE"] = str(ids_file)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ids = json.loads(ids_file.read_text())
    task_events = [e for e in _events(events_file) if e["job"]["name"] == "ol_refresh.refresh"]
    assert [e["eventType"] for e in task_events] == ["START", "COMPLETE"]
    complete = task_events[-1]
    assert sorted((o["namespace"], o["name"]) for o in complete["outputs"]) == sorted([
        (f"powerbi://{ids['workspace'].lower()}", ids["dataset"].lower()),
        (f"powerbi://{ids['workspace'].lower()}", f"dataflows/{ids['dataflow'].lower()}"),
    ])
    assert task_events[0]["outputs"] == []  # nothing is refreshed yet when the task starts
