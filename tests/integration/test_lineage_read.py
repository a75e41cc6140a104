"""Reading the lineage graph with the sync client against the emulator: a chain across two workspaces (dataflow ->
dataflow -> dataset -> composite model), with and without adding the upstream dataflows; one read of each
workspace's dataset links; cycles, workspaces outside the allow-list and refused reads, all before any refresh."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest

from pbi_taskflow.client.models import Dataflow, NotifyOption, Refresh, Target
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.engine.lineage import read_graph
from pbi_taskflow.errors import LineageCycleError, LineageError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cold_token_cache")]


@pytest.fixture
def chain(emulator: Any) -> tuple[Any, ConnectionSettings]:
    """Raw Ingest (Landing) -> Sales ETL (Finance) -> dataset Sales (Finance) -> composite Sales Composite
    (Finance); Landing Stats (Landing) reads Raw Ingest; Stock (Finance) reads nothing."""
    emulator.add_workspace("Landing")
    emulator.add_workspace("Finance", dedicated=False)
    emulator.add_dataflow("Landing", "Raw Ingest")
    emulator.add_dataflow("Finance", "Sales ETL", upstream=["Raw Ingest"])
    for workspace, name in (("Finance", "Sales"), ("Finance", "Sales Composite"), ("Finance", "Stock"),
                            ("Landing", "Landing Stats")):
        emulator.add_dataset(workspace, name)
    emulator.link_dataset("Finance", "Sales", upstream_dataflows=["Sales ETL"])
    emulator.link_dataset("Landing", "Landing Stats", upstream_dataflows=["Raw Ingest"])
    emulator.link_model("Sales Composite", ["Sales"])
    emulator.add_datasource("Sales Composite", type="Sql", server="sql01", database="budget")
    return emulator, ConnectionSettings.from_mapping(emulator.airflow_conn(), conn_id="powerbi_default")


def _client(settings: ConnectionSettings, **kw: Any) -> Any:
    kw.setdefault("retry", RetryPolicy(sleep=lambda _: None, jitter=0.0))
    return settings.build_client(**kw)


def _targets(client: Any, *items: Refresh | Dataflow) -> list[Target]:
    return [client.resolve(item) for item in items]


def _ids(emu: Any) -> dict[str, str]:
    return {"raw": emu.dataflow("Raw Ingest").id.lower(), "etl": emu.dataflow("Sales ETL").id.lower(),
            **{key: emu.state.dataset(name).id.lower() for key, name in
               (("sales", "Sales"), ("composite", "Sales Composite"), ("stats", "Landing Stats"))}}


def _reads(emu: Any, endpoint: str) -> Counter[str]:
    """How often ``endpoint`` was called, per workspace id (lower-cased) in its path."""
    return Counter(r.path.split("/groups/")[1].split("/")[0].lower() for r in emu.requests if r.endpoint == endpoint)


def _no_refresh(emu: Any) -> None:
    assert emu.count("refresh_post") == emu.count("dataflow_refresh") == 0


def test_refresh_adds_every_upstream_dataflow_in_lineage_order(chain: Any) -> None:
    """upstream="refresh": the dataflows the selection reads across workspaces join the targets, upstream first;
    each workspace's dataset links are read once, each dataflow's links once."""
    emu, settings = chain
    ids = _ids(emu)
    landing, finance = emu.state.workspace("Landing").id.lower(), emu.state.workspace("Finance").id.lower()
    with _client(settings) as client:
        selected = _targets(client, Refresh("Sales Composite", "Finance"), Refresh("Sales", "Finance"),
                            Refresh("Landing Stats", "Landing"))
        emu.log.clear()
        graph, targets = read_graph(client, selected, add_upstream=True)
    assert targets[:3] == selected
    raw, etl = targets[3:]
    assert (raw.dataset_id.lower(), raw.dataset_name, raw.workspace_name) == (ids["raw"], "Raw Ingest", "Landing")
    assert (etl.dataset_id.lower(), etl.dataset_name, etl.workspace_name) == (ids["etl"], "Sales ETL", "Finance")
    assert {t.item for t in targets[3:]} == {"dataflow"}
    assert (raw.on_dedicated_capacity, etl.on_dedicated_capacity) == (True, False)
    assert raw.options.notify_option is NotifyOption.NO_NOTIFICATION
    assert (raw.profile_id, raw.workspace_id.lower()) == (None, landing)
    assert graph.depths() == {ids["composite"]: 3, ids["sales"]: 2, ids["stats"]: 1, ids["etl"]: 1, ids["raw"]: 0}
    assert graph.after(ids["composite"]) == (ids["sales"],)
    assert graph.after(ids["stats"]) == (ids["raw"],)
    assert graph.render() == [
        "depth 0: dataflow 'Raw Ingest' (Landing)",
        "depth 1: dataset 'Landing Stats' (Landing) <- dataflow 'Raw Ingest'",
        "depth 1: dataflow 'Sales ETL' (Finance) <- dataflow 'Raw Ingest' (Landing)",
        "depth 2: dataset 'Sales' (Finance) <- dataflow 'Sales ETL'",
        "depth 3: dataset 'Sales Composite' (Finance) <- dataset 'Sales'",
    ]
    assert _reads(emu, "dataset_upstream_dataflows") == {landing: 1, finance: 1}
    assert emu.count("dataflow_upstream_dataflows") == 2
    assert _reads(emu, "dataflows") == {landing: 1, finance: 1}  # listed once each, for the dataflows' names
    assert emu.count("datasources") == 3
    _no_refresh(emu)


def test_order_keeps_the_selection_linked_through_dataflows_it_does_not_refresh(chain: Any) -> None:
    """upstream="order": nothing is added; Sales waits for Raw Ingest through Sales ETL, which is not selected."""
    emu, settings = chain
    ids = _ids(emu)
    with _client(settings) as client:
        selected = _targets(client, Refresh("Sales Composite", "Finance"), Refresh("Sales", "Finance"),
                            Dataflow("Raw Ingest", "Landing"))
        emu.log.clear()
        graph, targets = read_graph(client, selected, add_upstream=False)
    assert targets == selected
    assert [n.key for n in graph.nodes] == [ids["composite"], ids["sales"], ids["raw"]]
    assert graph.depths() == {ids["composite"]: 2, ids["sales"]: 1, ids["raw"]: 0}
    assert graph.after(ids["sales"]) == (ids["raw"],)
    assert graph.render()[1] == "depth 1: dataset 'Sales' (Finance) <- dataflow 'Raw Ingest' (Landing)"
    finance = emu.state.workspace("Finance").id.lower()
    assert _reads(emu, "dataset_upstream_dataflows") == {finance: 1}  # Landing holds no selected dataset
    assert emu.count("dataflow_upstream_dataflows") == 2
    _no_refresh(emu)


def test_unrelated_items_stay_at_depth_zero(chain: Any) -> None:
    emu, settings = chain
    with _client(settings) as client:
        selected = _targets(client, Refresh("Stock", "Finance"), Refresh("Sales Composite", "Finance"))
        graph, targets = read_graph(client, selected, add_upstream=True)
    assert targets == selected
    assert set(graph.depths().values()) == {0}
    assert emu.count("dataflow_upstream_dataflows") == 0


def test_a_cycle_fails_before_anything_is_refreshed(chain: Any) -> None:
    """Dataflows A and B read each other: LineageCycleError names the cycle in order, with either option."""
    emu, settings = chain
    emu.add_dataflow("Finance", "A")
    emu.add_dataflow("Finance", "B", upstream=["A"])
    emu.link_dataflow("Finance", "A", ["B"])
    emu.link_dataset("Finance", "Stock", upstream_dataflows=["B"])
    with _client(settings) as client:
        selected = _targets(client, Refresh("Stock", "Finance"), Dataflow("A", "Finance"))
        for add_upstream in (True, False):
            with pytest.raises(LineageCycleError) as cycle:
                read_graph(client, selected, add_upstream=add_upstream)
            assert "dataflow 'A' (Finance) -> dataflow 'B' (Finance) -> dataflow 'A'" in str(cycle.value)
            assert "upstream='ignore'" in str(cycle.value)
    _no_refresh(emu)


def test_a_link_into_a_workspace_outside_the_allow_list(chain: Any, caplog: pytest.LogCaptureFixture) -> None:
    """upstream="refresh" cannot refresh it: LineageError naming it, its workspace and the fixes; nothing is asked of
    that workspace. upstream="order" orders the selection without it (a warning)."""
    emu, settings = chain
    landing = emu.state.workspace("Landing").id
    with _client(settings, allowed_workspaces=["Finance"]) as client:
        selected = _targets(client, Refresh("Sales", "Finance"))
        with pytest.raises(LineageError) as denied:
            read_graph(client, selected, add_upstream=True)
        with caplog.at_level(logging.WARNING, logger="pbi_taskflow.engine.lineage"):
            graph, targets = read_graph(client, selected, add_upstream=False)
    message = str(denied.value)
    assert f"dataflow {emu.dataflow('Raw Ingest').id}, which dataflow 'Sales ETL' (Finance) reads" in message
    assert f"lives in workspace {landing}" in message
    assert "allowed_workspaces" in message
    assert "upstream='order'" in message
    assert denied.value.workspace == landing
    assert all(landing.lower() not in r.path.lower() for r in emu.requests)
    assert targets == selected
    assert [n.name for n in graph.nodes] == ["Sales"]
    assert "It is not followed further" in caplog.text
    _no_refresh(emu)


def test_refused_lineage_reads_fail_and_refused_datasource_reads_only_warn(
        chain: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A 403 on a dataflow's links is LineageError; a 403 on a composite model's data sources drops its ordering."""
    emu, settings = chain
    ids = _ids(emu)
    with _client(settings) as client:
        selected = _targets(client, Refresh("Sales Composite", "Finance"), Refresh("Sales", "Finance"))
        emu.inject("dataflow_upstream_dataflows", "error", status=403)
        with pytest.raises(LineageError, match="Power BI refused or did not find the upstream dataflows of dataflow "
                                               "'Sales ETL' \\(Finance\\)") as refused:
            read_graph(client, selected, add_upstream=True)
        emu.inject("datasources", "error", status=403, dataset=ids["composite"])
        with caplog.at_level(logging.WARNING, logger="pbi_taskflow.engine.lineage"):
            graph, _ = read_graph(client, selected, add_upstream=False)
    assert (refused.value.status, refused.value.workspace) == (403, "Finance")
    assert str(refused.value).count("HTTP 403") == 1
    assert graph.after(ids["composite"]) == ()
    assert "Could not read the data sources of dataset 'Sales Composite'" in caplog.text
    _no_refresh(emu)
