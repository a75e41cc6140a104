"""The demo's presentation helpers, its chain-order check, and the demo itself (`make demo`) end to end."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from pbi_taskflow.alerts.templating import _md as md_escape
from pbi_taskflow.cli.demo import _alert_excerpt, _card_texts, _compact, _rendered, _results_table, chain_order


def test_status_lines_are_compacted_to_dataset_status_and_elapsed():
    """A structured status line shrinks to 'dataset: status (seen N s after the start)'; other lines pass through."""
    line = ("Power BI refresh state: workspace=Finance dataset=Sales refresh_id=1 kind=standard status=Completed "
            "extended_status=- elapsed_s=5.0 attempt=1 throttled_s=2.0")
    assert _compact(line) == "Sales: Completed (seen 5.0 s after the start, throttled 2.0 s)"
    assert _compact("Started a refresh") == "Started a refresh"


def test_status_line_of_a_quoted_dataset_name_keeps_the_whole_name():
    """A dataset name with spaces (quoted in the status line) is shown whole, without quotes."""
    line = ('Power BI refresh state: workspace="Finance EU" dataset="Sales Model" refresh_id=1 kind=standard '
            "status=Failed extended_status=- elapsed_s=12.0 attempt=1 throttled_s=-")
    assert _compact(line) == "Sales Model: Failed (seen 12.0 s after the start)"


def test_card_texts_flatten_an_adaptive_card():
    """Texts and facts of an Adaptive Card come out in reading order."""
    card = {"attachments": [{"content": {"body": [
        {"type": "TextBlock", "text": "Power BI refresh failed"},
        {"type": "FactSet", "facts": [{"title": "DAG", "value": "sales"}]},
    ]}}]}
    assert _card_texts(card) == ["Power BI refresh failed", "DAG: sales"]


def test_card_texts_are_shown_as_teams_renders_them():
    """The Markdown escapes the Teams card carries are removed for display, giving back the original text."""
    original = r"1 of 3 dataset(s) failed: manual__2026 [stock] a\b *x* #1"
    assert md_escape(original) != original
    assert _rendered(md_escape(original)) == original


def test_a_running_refresh_reads_running_not_unknown():
    """Power BI's in-progress history status `Unknown` is shown as Running in the demo's progress lines."""
    line = ("Power BI refresh state: workspace=Finance dataset=Sales refresh_id=1 kind=standard status=Unknown "
            "extended_status=- elapsed_s=1.5 attempt=1 throttled_s=-")
    assert _compact(line) == "Sales: Running (seen 1.5 s after the start)"


def test_the_alert_excerpt_says_when_it_is_cut():
    """A long alert is cut to its first lines, and a last line says how many were left out; a short one is whole."""
    texts = [f"line {n}" for n in range(20)]
    excerpt = _alert_excerpt(texts, limit=14)
    assert excerpt[:14] == texts[:14]
    assert excerpt[14:] == ["... (6 more line(s) of the alert not shown here)"]
    assert _alert_excerpt(texts[:5], limit=14) == texts[:5]


def _text(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _cells(row: str) -> list[str]:
    """The cells of a table row as rich draws it (``│ 0     │ Finance   │ ...``)."""
    return re.split(r"\s*│\s*", row.strip().strip("│").strip())


def test_results_of_a_lineage_ordered_run_are_shown_by_depth_with_dataflows_marked():
    """After upstream="refresh" the results table has a depth column, upstream first, and names dataflows as such."""
    results = [
        {"workspace_name": "Finance", "dataset_name": "Sales", "kind": "standard", "status": "Completed", "depth": 1},
        {"workspace_name": "Finance", "dataset_name": "Sales ETL", "kind": "dataflow", "status": "Completed",
         "depth": 0},
    ]
    rows = [line for line in _text(_results_table(results)).splitlines() if "Finance" in line]
    assert [_cells(row)[:3] for row in rows] == [
        ["0", "Finance", "Sales ETL (dataflow)"], ["1", "Finance", "Sales"]]
    plain = _text(_results_table([{**results[0], "depth": None}]))
    assert "Per-dataset results" in plain
    assert "depth" not in plain


def _emulated(seconds: float) -> dt.datetime:
    return dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)


def _emulator(dataflow_end: float, post_at: float) -> SimpleNamespace:
    posts = [SimpleNamespace(endpoint="refresh_post", status=202, path=f"/v1.0/myorg/groups/g/datasets/{ds}/refreshes",
                             time=_emulated(at)) for ds, at in (("DS-SALES", post_at), ("ds-other", 0.0))]
    return SimpleNamespace(requests=posts, dataflow=lambda name: SimpleNamespace(
        transactions=[SimpleNamespace(end=_emulated(dataflow_end))]))


RESULTS = [{"dataset_id": "ds-sales", "dataset_name": "Sales", "kind": "standard"},
           {"dataset_id": "df-1", "dataset_name": "Sales ETL", "kind": "dataflow"},
           {"dataset_id": "ds-other", "dataset_name": "Marketing", "kind": "standard"}]


def test_chain_order_holds_when_the_dataflow_ended_before_the_dataset_refresh_was_requested():
    """The check compares the dataflow's transaction end with the dataset's refresh POST in the request log."""
    ok, when = chain_order(_emulator(dataflow_end=3.0, post_at=4.0), RESULTS, "Sales ETL", "Sales")
    assert ok
    assert when == ("dataflow 'Sales ETL' ended 2026-01-01T06:00:03+00:00, 'Sales' requested "
                    "2026-01-01T06:00:04+00:00")


def test_chain_order_fails_when_the_dataset_refresh_was_requested_while_the_dataflow_ran():
    """A dataset POST before its dataflow ended is reported as out of order (here: 1 s before)."""
    ok, _ = chain_order(_emulator(dataflow_end=5.0, post_at=4.0), RESULTS, "Sales ETL", "Sales")
    assert not ok


@pytest.mark.slow
@pytest.mark.integration
def test_the_demo_refreshes_the_dataflow_before_the_dataset_reading_it():
    """`pbi-taskflow demo` runs to the end; its dataflow's refresh ended before its dataset's refresh was requested
    (emulated times from the emulator's dataflow transaction and request log) and the results are shown by depth."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["COLUMNS"] = "250"  # one line per table row and message
    proc = subprocess.run([sys.executable, "-m", "pbi_taskflow.cli", "demo"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out[-5000:] + proc.stderr[-3000:]
    found = re.search(r"Chain order checked: dataflow 'Sales ETL' ended (\S+), 'Sales' requested (\S+)", out)
    assert found, out[-5000:]
    ended, requested = (dt.datetime.fromisoformat(t) for t in found.groups())
    assert ended <= requested
    assert "Results by lineage depth" in out
    table = out[out.index("Results by lineage depth"):out.index("Chain order checked")]
    rows = [_cells(line) for line in table.splitlines() if "Finance" in line]
    assert {cells[2]: cells[0] for cells in rows} == {"Sales ETL (dataflow)": "0", "Inventory": "0", "Marketing": "0",
                                                      "Sales": "1"}
    assert [cells[0] for cells in rows] == sorted(cells[0] for cells in rows)  # upstream first
