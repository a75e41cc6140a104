"""Unit tests for pbi_taskflow.engine.graph: depths, levels, waits, lookups, rendering and cycles of the lineage
graph, across workspaces and in diamond shapes; and how a composite model's data source names the model it reads
(pbi_taskflow.engine.lineage, pure)."""

from __future__ import annotations

import pickle

import pytest

from pbi_taskflow.client.models import Datasource, Target
from pbi_taskflow.engine.graph import LineageGraph, Node
from pbi_taskflow.engine.lineage import composite_link, reads_semantic_model
from pbi_taskflow.errors import AmbiguousNameError, ConfigurationError, LineageCycleError, UnknownNameError

LANDING = ("00000000-0000-0000-0000-00000000aaaa", "Landing")
FINANCE = ("00000000-0000-0000-0000-00000000bbbb", "Finance")


def _node(item: str, id: str, name: str, workspace: tuple[str, str] = FINANCE) -> Node:
    return Node.of(item, id, name, *workspace)


def _graph(*nodes: Node, links: tuple[tuple[str, str], ...] = ()) -> LineageGraph:
    graph = LineageGraph()
    for node in nodes:
        graph.add(node)
    for reader, upstream in links:
        graph.link(reader, upstream)
    return graph


RAW = _node("dataflow", "RAW-1", "Raw Ingest", LANDING)
ETL = _node("dataflow", "ETL-1", "Sales ETL")
SALES = _node("dataset", "SALES-1", "Sales")
COMPOSITE = _node("dataset", "COMP-1", "Sales Composite")


@pytest.fixture
def chain() -> LineageGraph:
    """Raw Ingest (Landing) <- Sales ETL <- Sales <- Sales Composite, added downstream first."""
    return _graph(COMPOSITE, SALES, ETL, RAW,
                  links=(("comp-1", "sales-1"), ("SALES-1", "ETL-1"), ("etl-1", "raw-1")))


def test_nodes_are_keyed_by_their_lower_cased_id() -> None:
    target = Target("W", "Finance", "ABC-1", "Sales ETL", item="dataflow")
    node = Node.of_target(target)
    assert node == Node("abc-1", "dataflow", "ABC-1", "Sales ETL", "W", "Finance")
    assert (node.label, node.short_label) == ("dataflow 'Sales ETL' (Finance)", "dataflow 'Sales ETL'")
    graph = LineageGraph()
    assert graph.add(node) is node
    assert graph.add(Node.of("dataflow", "abc-1", "Other", "W", "Finance")) is node  # the first one stays
    assert ("ABC-1" in graph, "abc-1" in graph, "x" in graph, len(graph)) == (True, True, False, 1)


def test_a_chain_has_one_level_per_depth(chain: LineageGraph) -> None:
    assert chain.depths() == {"comp-1": 3, "sales-1": 2, "etl-1": 1, "raw-1": 0}
    assert chain.levels() == [[RAW], [ETL], [SALES], [COMPOSITE]]
    assert chain.nodes == [COMPOSITE, SALES, ETL, RAW]
    assert list(chain) == chain.nodes


def test_upstream_downstream_and_after_are_direct(chain: LineageGraph) -> None:
    assert chain.upstream_of("SALES-1") == [ETL]
    assert chain.downstream_of("sales-1") == [COMPOSITE]
    assert chain.upstream_of("raw-1") == []
    assert chain.downstream_of("comp-1") == []
    assert chain.after("comp-1") == ("sales-1",)
    assert chain.after("raw-1") == ()
    chain.link("comp-1", "sales-1")  # linking twice changes nothing
    assert chain.after("COMP-1") == ("sales-1",)
    with pytest.raises(KeyError, match="No item with id 'nope'"):
        chain.upstream_of("nope")
    with pytest.raises(KeyError, match="'ghost'"):
        chain.link("comp-1", "ghost")


def test_a_diamond_waits_for_its_deepest_branch() -> None:
    """Raw feeds A and B; B also reads A; the model reads both: it comes after the longer branch."""
    a = _node("dataflow", "A", "Orders")
    b = _node("dataflow", "B", "Customers")
    model = _node("dataset", "M", "Sales")
    graph = _graph(model, a, b, RAW, links=(("m", "a"), ("m", "b"), ("a", "raw-1"), ("b", "raw-1"), ("b", "a")))
    assert graph.depths() == {"m": 3, "a": 1, "b": 2, "raw-1": 0}
    assert graph.after("m") == ("a", "b")
    assert graph.downstream_of("raw-1") == [a, b]
    simple = _graph(model, a, b, RAW, links=(("m", "a"), ("m", "b"), ("a", "raw-1"), ("b", "raw-1")))
    assert simple.levels() == [[RAW], [a, b], [model]]


def test_unlinked_items_are_all_at_depth_zero() -> None:
    graph = _graph(SALES, ETL)
    assert graph.depths() == {"sales-1": 0, "etl-1": 0}
    assert graph.levels() == [[SALES, ETL]]
    assert LineageGraph().levels() == []
    assert LineageGraph().render() == []


def test_render_lists_items_by_depth_with_what_they_read(chain: LineageGraph) -> None:
    """An upstream item of another workspace carries its workspace."""
    assert chain.render() == [
        "depth 0: dataflow 'Raw Ingest' (Landing)",
        "depth 1: dataflow 'Sales ETL' (Finance) <- dataflow 'Raw Ingest' (Landing)",
        "depth 2: dataset 'Sales' (Finance) <- dataflow 'Sales ETL'",
        "depth 3: dataset 'Sales Composite' (Finance) <- dataset 'Sales'",
    ]


def test_find_by_id_or_name(chain: LineageGraph) -> None:
    assert chain.find("sales-1") is SALES
    assert chain.find("  sales composite ") is COMPOSITE
    assert chain.find("RAW INGEST") is RAW
    chain.add(_node("dataset", "SALES-2", "sales", LANDING))
    with pytest.raises(AmbiguousNameError, match="'Sales' is ambiguous") as ambiguous:
        chain.find("Sales")
    assert "dataset 'Sales' (Finance) (id SALES-1), dataset 'sales' (Landing) (id SALES-2)" in str(ambiguous.value)
    assert [c["id"] for c in ambiguous.value.candidates] == ["SALES-1", "SALES-2"]
    with pytest.raises(UnknownNameError, match="Closest items: dataflow 'Sales ETL' \\(Finance\\)") as unknown:
        chain.find("Sales ELT")
    assert unknown.value.candidates[0]["item"] == "dataflow"
    with pytest.raises(UnknownNameError, match="None of its 5 items has a similar name"):
        chain.find("zzz")
    with pytest.raises(UnknownNameError, match="The graph is empty"):
        LineageGraph().find("Sales")


def test_a_cycle_is_named_in_order_with_what_to_do() -> None:
    a = _node("dataflow", "A", "A")
    b = _node("dataflow", "B", "B")
    graph = _graph(SALES, a, b, links=(("sales-1", "a"), ("b", "a"), ("a", "b")))
    assert graph.find_cycle() == ["a", "b"]
    with pytest.raises(LineageCycleError) as cycle:
        graph.check()
    error = cycle.value
    assert "dataflow 'A' (Finance) -> dataflow 'B' (Finance) -> dataflow 'A' (each item feeds the next)" in str(error)
    assert "upstream='ignore'" in str(error)
    assert error.cycle == ["dataflow 'A' (Finance)", "dataflow 'B' (Finance)", "dataflow 'A' (Finance)"]
    assert isinstance(error, ConfigurationError)
    assert pickle.loads(pickle.dumps(error)).cycle == error.cycle
    for call in (graph.depths, graph.levels, graph.render):
        with pytest.raises(LineageCycleError):
            call()


def test_a_longer_cycle_across_workspaces_starts_at_its_first_item() -> None:
    """A feeds B, B feeds C, C feeds A; the message follows the data from the item added first."""
    c = _node("dataflow", "C", "C", LANDING)
    a = _node("dataflow", "A", "A")
    b = _node("dataflow", "B", "B")
    graph = _graph(SALES, c, a, b, links=(("b", "a"), ("c", "b"), ("a", "c"), ("sales-1", "c")))
    assert graph.find_cycle() == ["c", "a", "b"]
    with pytest.raises(LineageCycleError) as cycle:
        graph.check()
    assert ("dataflow 'C' (Landing) -> dataflow 'A' (Finance) -> dataflow 'B' (Finance) -> dataflow 'C' (each"
            in str(cycle.value))


def test_an_item_reading_itself_is_a_cycle() -> None:
    graph = _graph(ETL, links=(("etl-1", "etl-1"),))
    with pytest.raises(LineageCycleError, match="dataflow 'Sales ETL' \\(Finance\\) -> dataflow 'Sales ETL' "):
        graph.check()


def test_no_cycle_passes_the_check(chain: LineageGraph) -> None:
    assert chain.find_cycle() is None
    chain.check()


@pytest.mark.parametrize(("source", "linked"), [
    (Datasource("AnalysisServices", {"server": "powerbi://api.powerbi.com/v1.0/myorg/Finance", "database": "Sales"}),
     True),
    (Datasource("AnalysisServices", {"server": "powerbi://api.powerbi.com/v1.0/myorg/finance/", "database": "SALES"}),
     True),
    (Datasource("AnalysisServices", {"server": "powerbi://api.powerbi.com/v1.0/myorg/Sales%20Hub",
                                     "database": "Sales"}), False),
    (Datasource("AnalysisServices", {"server": "powerbi://api.powerbi.com/v1.0/myorg/Finance", "database": "Stock"}),
     False),
    (Datasource("AnalysisServices", {"server": "asazure://westeurope.asazure.windows.net/Finance",
                                     "database": "Sales"}), False),
    (Datasource("Sql", {"server": "powerbi://api.powerbi.com/v1.0/myorg/Finance", "database": "Sales"}), False),
    (Datasource("AnalysisServices", {"server": "powerbi://api.powerbi.com/v1.0/myorg/Finance",
                                     "database": "sobe_wowvirtualserver-SALES-1"}), True),
])
def test_a_composite_model_reads_a_model_named_by_workspace_and_database(source: Datasource, linked: bool) -> None:
    """The data source of a composite model names the workspace at the end of its powerbi:// server (URL-encoded
    or not) and the model as its database (by name, or by id)."""
    assert composite_link(source, "Finance", SALES) is linked
    hub = Node.of("dataset", "HUB-1", "Sales", "W", "Sales Hub")
    assert composite_link(source, "Sales Hub", hub) is ("%20" in source.connection_details["server"])
    model = source.datasource_type == "AnalysisServices" and source.connection_details["server"].startswith("powerbi:")
    assert reads_semantic_model(source) is model
