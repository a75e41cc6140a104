"""The OData ``$filter`` evaluator used by the groups listing (pure logic)."""

from __future__ import annotations

import pytest

from pbi_taskflow.emulator.odata import FilterError, compile_filter

ROWS = [
    {"id": "a", "name": "Sales", "isOnDedicatedCapacity": True},
    {"id": "b", "name": "sales (dev)", "isOnDedicatedCapacity": False},
    {"id": "c", "name": "O'Brien", "isOnDedicatedCapacity": True},
]


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        pytest.param("", ["a", "b", "c"], id="empty"),
        pytest.param("name eq 'Sales'", ["a"], id="eq"),
        pytest.param("name ne 'Sales'", ["b", "c"], id="ne"),
        pytest.param("toupper(name) eq 'SALES'", ["a"], id="toupper"),
        pytest.param("startswith(tolower(name),'sales')", ["a", "b"], id="startswith-tolower"),
        pytest.param("endswith(name,'(dev)')", ["b"], id="endswith"),
        pytest.param("name eq 'O''Brien'", ["c"], id="escaped-quote"),
        pytest.param("not (isOnDedicatedCapacity eq true) or id eq 'c'", ["b", "c"], id="not-or"),
        pytest.param("contains(name,'a') and isOnDedicatedCapacity eq true", ["a"], id="and"),
        pytest.param("NAME EQ 'Sales'", [], id="field-names-are-case-sensitive"),
    ],
)
def test_filter_selects_matching_rows(expression: str, ids: list[str]) -> None:
    """Each supported construct selects the expected rows."""
    predicate = compile_filter(expression)
    assert [r["id"] for r in ROWS if predicate(r)] == ids


@pytest.mark.parametrize("expression",
                         ["name gt 'a'", "name eq", "contains(name 'a')", "name eq 'open", "(name eq 'a'"])
def test_invalid_filters_raise_filter_error(expression: str) -> None:
    """Malformed or unsupported expressions raise FilterError with a message."""
    with pytest.raises(FilterError, match="Invalid"):
        compile_filter(expression)
