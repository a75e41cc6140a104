"""The demo's presentation helpers (the demo itself runs with `make demo`)."""

from __future__ import annotations

from pbi_taskflow.demo import _card_texts, _compact


def test_status_lines_are_compacted_to_dataset_status_and_elapsed():
    """A structured status line shrinks to 'dataset: status after N s'; other lines pass through."""
    line = ("Power BI refresh state: workspace=Finance dataset=Sales refresh_id=1 kind=standard status=Completed "
            "extended_status=- elapsed_s=5.0 attempt=1 throttled_s=2.0")
    assert _compact(line) == "Sales: Completed after 5.0 s, throttled 2.0 s"
    assert _compact("Started a refresh") == "Started a refresh"


def test_card_texts_flatten_an_adaptive_card():
    """Texts and facts of an Adaptive Card come out in reading order."""
    card = {"attachments": [{"content": {"body": [
        {"type": "TextBlock", "text": "Power BI refresh failed"},
        {"type": "FactSet", "facts": [{"title": "DAG", "value": "sales"}]},
    ]}}]}
    assert _card_texts(card) == ["Power BI refresh failed", "DAG: sales"]
