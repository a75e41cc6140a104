"""The demo's presentation helpers (the demo itself runs with `make demo`)."""

from __future__ import annotations

from pbi_taskflow.alerts.templating import _md as md_escape
from pbi_taskflow.cli.demo import _alert_excerpt, _card_texts, _compact, _rendered


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
