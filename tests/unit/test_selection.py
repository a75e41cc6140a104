"""Unit tests for pbi_taskflow.engine.selection: every accepted return shape, merging, and clear rejections."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.client.models import Refresh, RefreshObject, RefreshType
from pbi_taskflow.engine.selection import ACCEPTED_SHAPES, normalize


def _tables(refresh: Refresh) -> list[tuple[str, str | None]]:
    return [(o.table, o.partition) for o in refresh.options.objects]


@pytest.mark.parametrize("value", [None, [], (), set(), {}, iter(())], ids=["none", "list", "tuple", "set", "dict", "gen"])
def test_nothing_selected_gives_empty_list(value: Any) -> None:
    """None and empty collections select nothing."""
    assert normalize(value, default_workspace="Sales") == []


def test_single_name_uses_default_workspace() -> None:
    """A bare string is one whole-model refresh in the task's workspace."""
    [refresh] = normalize("Revenue", default_workspace="Sales")
    assert (refresh.dataset, refresh.workspace, refresh.options.objects) == ("Revenue", "Sales", ())


def test_refresh_object_keeps_its_own_workspace_and_options() -> None:
    """A Refresh passes through; its own workspace wins over the default."""
    [refresh] = normalize(Refresh("Revenue", "Finance", tables=["Fact"], type="Full"), default_workspace="Sales")
    assert refresh.workspace == "Finance"
    assert refresh.options.type is RefreshType.FULL
    assert _tables(refresh) == [("Fact", None)]


def test_refresh_object_without_workspace_gets_default() -> None:
    """A Refresh without a workspace takes the task's default."""
    [refresh] = normalize(Refresh("Revenue", tables="Fact"), default_workspace="Sales")
    assert refresh.workspace == "Sales"
    assert _tables(refresh) == [("Fact", None)]


def test_mapping_of_tables_and_whole_models() -> None:
    """A mapping selects tables per dataset; None, a single table name or partitions are accepted too."""
    refreshes = normalize(
        {"Revenue": ["Fact", "Dim"], "Costs": None, "Stock": "Items", "Orders": {"Fact": ["2025", "2026"], "Dim": None}},
        default_workspace="Sales",
    )
    by_name = {r.dataset: r for r in refreshes}
    assert _tables(by_name["Revenue"]) == [("Fact", None), ("Dim", None)]
    assert _tables(by_name["Costs"]) == []
    assert _tables(by_name["Stock"]) == [("Items", None)]
    assert _tables(by_name["Orders"]) == [("Fact", "2025"), ("Fact", "2026"), ("Dim", None)]


def test_iterable_mixing_every_shape_and_nested_lists() -> None:
    """Lists, generators and nested lists may mix names, Refresh objects and mappings."""
    value = ["A", (x for x in [Refresh("B", "Other")]), [{"C": ["T"]}]]
    refreshes = normalize(value, default_workspace="Sales")
    assert [(r.dataset, r.workspace) for r in refreshes] == [("A", "Sales"), ("B", "Other"), ("C", "Sales")]


def test_duplicates_merge_case_insensitively_with_table_union() -> None:
    """The same dataset twice (any casing) becomes one refresh with the union of its tables."""
    refreshes = normalize([{"Revenue": ["Fact"]}, {"revenue": ["Dim", "Fact"]}], default_workspace="Sales")
    assert len(refreshes) == 1
    assert _tables(refreshes[0]) == [("Fact", None), ("Dim", None)]


def test_whole_model_wins_over_tables_when_merging() -> None:
    """A whole-model request for a dataset also asked for by tables refreshes the whole model."""
    refreshes = normalize([{"Revenue": ["Fact"]}, "REVENUE"], default_workspace="Sales")
    assert len(refreshes) == 1
    assert refreshes[0].options.objects == ()


def test_same_dataset_in_two_workspaces_stays_separate() -> None:
    """Datasets are keyed by workspace too."""
    refreshes = normalize(["Revenue", Refresh("Revenue", "Finance")], default_workspace="Sales")
    assert [(r.workspace, r.dataset) for r in refreshes] == [("Sales", "Revenue"), ("Finance", "Revenue")]


@pytest.mark.parametrize(
    "value",
    [42, 3.5, b"bytes", object(), ["ok", 7], {"Revenue": 5}, {7: None}, ["ok", None], "   ", {"Revenue": [1]}],
    ids=["int", "float", "bytes", "object", "list-with-int", "bad-tables", "bad-key", "none-inside", "blank", "int-table"],
)
def test_other_shapes_raise_type_error_naming_the_shapes(value: Any) -> None:
    """Any other value fails with a TypeError listing the accepted shapes."""
    with pytest.raises(TypeError) as info:
        normalize(value, default_workspace="Sales")
    assert ACCEPTED_SHAPES in str(info.value)
    assert "returned" in str(info.value)


def test_rejection_shows_a_truncated_repr_of_the_value() -> None:
    """A huge bad value is shown, but truncated."""
    with pytest.raises(TypeError) as info:
        normalize({"Revenue": ["Fact"], "x" * 5000: 5}, default_workspace=None)
    text = str(info.value)
    assert "..." in text
    assert len(text) < 1200


def test_refresh_objects_are_value_types() -> None:
    """Merging keeps RefreshObject identity so a table listed twice appears once."""
    [refresh] = normalize([{"R": ["T"]}, {"R": ["T"]}], default_workspace="W")
    assert refresh.options.objects == (RefreshObject("T"),)


def test_every_shape_in_the_decorator_docs_table_is_accepted() -> None:
    """Each literal return value docs/decorator.md lists is accepted, with the tables and partitions it says."""
    import ast
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "decorator.md").read_text(encoding="utf-8")
    table = doc[doc.index("| Return value | Meaning |"):doc.index("## Arguments")]
    literals = []
    for cell in (row.split("|")[1] for row in table.splitlines()[2:] if row.startswith("|")):
        for code in re.findall(r"`([^`]+)`", cell):
            try:
                literals.append(ast.literal_eval(code))
            except (ValueError, SyntaxError):
                continue  # Refresh(...), "3f1c…": not literals
    assert {"Sales": "Fact"} in literals
    assert {"Sales": {"Fact": "2025"}} in literals
    for value in literals:
        normalize(value, default_workspace="Finance")
    [one_table] = normalize({"Sales": "Fact"}, default_workspace="Finance")
    assert [(o.table, o.partition) for o in one_table.options.objects] == [("Fact", None)]
    [one_partition] = normalize({"Sales": {"Fact": "2025"}}, default_workspace="Finance")
    assert [(o.table, o.partition) for o in one_partition.options.objects] == [("Fact", "2025")]
    [mixed] = normalize({"Sales": {"Fact": ["2025", "2026"], "Dim": None}}, default_workspace="Finance")
    assert [(o.table, o.partition) for o in mixed.options.objects] == [("Fact", "2025"), ("Fact", "2026"), ("Dim", None)]
