"""pbi_fake_client with dataflows and lineage: seeding, transactions, lineage reads, and the real engine driving it."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from pbi_taskflow.client.models import (
    Dataflow,
    Datasource,
    Handle,
    Refresh,
    RefreshResult,
    RefreshStatus,
    Target,
    UpstreamDataflow,
    parse_timestamp,
)
from pbi_taskflow.engine.lineage import read_graph
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.engine.run import RefreshRun
from pbi_taskflow.engine.waiter import Waiter
from pbi_taskflow.errors import ConfigurationError, NotFoundError, RefreshAlreadyRunningError, ThrottledError


def _handle(target: Target, transaction_id: str, requested_at: dt.datetime) -> Handle:
    return Handle(target.workspace_id, target.workspace_name, target.dataset_id, target.dataset_name, transaction_id,
                  "dataflow", requested_at.isoformat())


def _start(fake, target: Target) -> Handle:
    requested_at = fake.start_dataflow(target)
    entry = fake.refresh_history(target.workspace_id, target.dataset_id, item="dataflow")[0]
    return _handle(target, entry.request_id, requested_at)


def test_a_dataflow_resolves_to_a_dataflow_target(pbi_fake_client):
    """resolve(Dataflow(...)) gives a Target with item="dataflow" and the dataflow's id and name, like the real client;
    names match case-insensitively; the task's default workspace applies."""
    fake = pbi_fake_client
    flow = fake.add_dataflow("Ingest", "Sales ETL", id="df-1")
    target = fake.resolve(Dataflow("sales etl", notify_option="MailOnFailure"), "Ingest")
    assert (target.item, target.dataset_id, target.dataset_name, target.workspace_name) == (
        "dataflow", "df-1", "Sales ETL", "Ingest")
    assert target.options.notify_option == "MailOnFailure"
    assert fake.dataflow_target("Ingest", "df-1") == fake.resolve(Dataflow("Sales ETL", "Ingest"))
    assert fake.list_dataflows("Ingest") == [flow.dataflow]
    assert fake.get_dataflow("Ingest", "Sales ETL") == flow.dataflow
    with pytest.raises(NotFoundError, match="Nope"):
        fake.resolve(Dataflow("Nope", "Ingest"))
    with pytest.raises(ConfigurationError, match="No workspace"):
        fake.resolve(Dataflow("Sales ETL"))
    with pytest.raises(ValueError, match="outcome"):
        fake.add_dataflow("Ingest", "Other", outcome="Disabled")


def test_a_transaction_runs_through_programmed_polls_to_its_outcome(pbi_fake_client):
    """start_dataflow returns the request time; the transaction is listed OnDemand and InProgress from then on, for
    the programmed number of state queries, then Completed with a stable start and end."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Sales ETL", polls=2)
    target = fake.dataflow_target("Ingest", "Sales ETL")
    requested_at = fake.start_dataflow(target)
    assert isinstance(requested_at, dt.datetime)
    assert requested_at.tzinfo is not None
    [entry] = fake.refresh_history(target.workspace_id, target.dataset_id, top=10, item="dataflow")
    assert (entry.refresh_type, entry.status, entry.end) == ("OnDemand", RefreshStatus.IN_PROGRESS, None)
    assert parse_timestamp(entry.start) >= requested_at.replace(microsecond=0)
    assert fake.running_refresh(target.workspace_id, target.dataset_id, item="dataflow") == entry
    handle = _handle(target, entry.request_id, requested_at)
    states = [fake.get_refresh_state(handle) for _ in range(4)]
    assert [s.status for s in states] == [RefreshStatus.IN_PROGRESS] * 2 + [RefreshStatus.COMPLETED] * 2
    assert {s.start for s in states} == {entry.start}
    assert states[2].end is not None
    assert states[3].end == states[2].end
    assert fake.running_refresh(target.workspace_id, target.dataset_id, item="dataflow") is None
    second = _start(fake, target)
    history = fake.refresh_history(target.workspace_id, target.dataset_id, item="dataflow")
    assert [e.request_id for e in history] == [second.refresh_id, entry.request_id]  # newest first


def test_a_second_start_while_one_runs_is_refused(pbi_fake_client):
    """Power BI runs one transaction per dataflow: starting another raises RefreshAlreadyRunningError."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Sales ETL", polls=5)
    target = fake.dataflow_target("Ingest", "Sales ETL")
    fake.start_dataflow(target)
    with pytest.raises(RefreshAlreadyRunningError, match="already running"):
        fake.start_dataflow(target)


def test_a_failed_transaction_reports_the_real_clients_error(pbi_fake_client):
    """A failing dataflow ends Failed with DataflowRefreshFailed, in its state and its history."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Sales ETL", polls=0, outcome="Failed", error_message="entity Orders failed")
    target = fake.dataflow_target("Ingest", "Sales ETL")
    handle = _start(fake, target)
    state = fake.get_refresh_state(handle)
    assert (state.status, state.error_code, state.error_message) == (
        RefreshStatus.FAILED, "DataflowRefreshFailed", "entity Orders failed")
    [entry] = fake.refresh_history(target.workspace_id, target.dataset_id, item="dataflow")
    assert (entry.status, entry.error_code) == (RefreshStatus.FAILED, "DataflowRefreshFailed")


def test_cancel_ends_a_running_transaction(pbi_fake_client):
    """cancel_refresh ends a running transaction Cancelled; cancelling an ended one is harmless, as in Power BI."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Sales ETL", polls=5)
    target = fake.dataflow_target("Ingest", "Sales ETL")
    handle = _start(fake, target)
    assert fake.get_refresh_state(handle).status == RefreshStatus.IN_PROGRESS
    fake.cancel_refresh(handle)
    assert fake.get_refresh_state(handle).status == RefreshStatus.CANCELLED
    assert fake.refresh_history(target.workspace_id, target.dataset_id, item="dataflow")[0].status == (
        RefreshStatus.CANCELLED)
    fake.cancel_refresh(handle)
    fake.cancel_refresh.assert_called_with(handle)
    with pytest.raises(NotFoundError, match="transaction nope"):
        fake.get_refresh_state(_handle(target, "nope", dt.datetime.now(dt.timezone.utc)))


def test_dataflow_calls_are_mocks_and_take_programmed_errors(pbi_fake_client):
    """The dataflow and lineage calls are MagicMocks too, and fail_next applies to them."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Sales ETL")
    target = fake.dataflow_target("Ingest", "Sales ETL")
    fake.fail_next("start_dataflow", ThrottledError("slow down", status=429, retry_after=1))
    with pytest.raises(ThrottledError):
        fake.start_dataflow(target)
    fake.start_dataflow(target)
    assert fake.start_dataflow.call_count == 2
    fake.list_dataflows("Ingest")
    fake.list_dataflows.assert_called_once_with("Ingest")


def test_lineage_is_seeded_and_read(pbi_fake_client):
    """add_dataflow(upstream=), link_dataflow, link_dataset and link_model seed what the lineage calls answer."""
    fake = pbi_fake_client
    raw = fake.add_dataflow("Ingest", "Raw", id="df-raw").dataflow
    clean = fake.add_dataflow("Staging", "Clean", id="df-clean", upstream=["Raw"]).dataflow
    fake.add_dataflow("Staging", "Extra", id="df-extra")
    fake.link_dataflow("Staging", "Clean", ["df-extra"])
    fake.add_dataset("Finance", "Sales", id="ds-sales")
    fake.add_dataset("Finance", "Other", id="ds-other")
    fake.add_dataset("Reports", "Board", id="ds-board")
    fake.link_dataset("Finance", "Sales", ["Clean"])
    fake.link_dataset(None, "Sales", ["df-clean"])  # linking twice changes nothing
    [source] = fake.link_model("Board", ["Sales"])
    assert fake.link_model("Board", "ds-sales") == []
    ws = fake.allowed_workspace("Finance")
    assert fake.allowed_workspace(ws.id) == ws
    assert fake.dataset_upstream_dataflows(ws) == [UpstreamDataflow("ds-sales", "df-clean", clean.workspace_id)]
    assert fake.dataset_upstream_dataflows("Finance", "Other") == []
    assert fake.dataflow_upstream_dataflows(clean) == [
        UpstreamDataflow("df-clean", "df-raw", raw.workspace_id),
        UpstreamDataflow("df-clean", "df-extra", clean.workspace_id)]
    assert source == Datasource("AnalysisServices", {"server": "powerbi://api.powerbi.com/v1.0/myorg/Finance",
                                                     "database": "Sales"})
    assert fake.list_datasources(fake.target("Reports", "Board")) == [source]
    assert fake.list_datasources(fake.target("Finance", "Sales")) == []
    with pytest.raises(ValueError, match="cannot read itself"):
        fake.link_dataflow(None, "Clean", ["Clean"])
    with pytest.raises(ValueError, match="cannot read itself"):
        fake.link_model("Board", ["Board"])
    with pytest.raises(NotFoundError):
        fake.allowed_workspace("Nowhere")


def test_the_module_docstring_example(pbi_fake_client):
    """The dataflow example of the fake client's docstring runs as written."""
    pbi_fake_client.add_dataflow("Ingest", "Sales ETL", polls=1, outcome="Failed")
    pbi_fake_client.add_dataset("Finance", "Sales")
    pbi_fake_client.link_dataset("Finance", "Sales", ["Sales ETL"])
    target = pbi_fake_client.resolve(Dataflow("Sales ETL", "Ingest"))
    pbi_fake_client.start_dataflow(target)
    [transaction] = pbi_fake_client.refresh_history(target.workspace_id, target.dataset_id, item="dataflow")
    handle = Handle(target.workspace_id, target.workspace_name, target.dataset_id, target.dataset_name,
                    transaction.request_id, "dataflow", transaction.start or "")
    assert pbi_fake_client.get_refresh_state(handle).status == RefreshStatus.IN_PROGRESS
    assert pbi_fake_client.get_refresh_state(handle).status == RefreshStatus.FAILED


# --- the real engine driving the fake ----------------------------------------------------------------------------


class _Clock:
    """A clock that moves only when the waiter sleeps (the fake's refreshes advance on status calls, not time)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


def _refresh(fake, selection: list[Refresh | Dataflow], *, add_upstream: bool = True) -> dict[str, RefreshResult]:
    """What the operator does with upstream="refresh" (or "order"): read the lineage, then plan, start and wait."""
    targets = [fake.resolve(item) for item in selection]
    graph, targets = read_graph(fake, targets, add_upstream=add_upstream)
    run = RefreshRun()
    keys = [t.dataset_id.lower() for t in targets]
    run.after = {k: list(graph.after(k)) for k in keys if graph.after(k)}
    run.depths = {k: v for k, v in graph.depths().items() if k in keys}
    policy = RefreshPolicy(poll_min=0.01, poll_max=0.05, timeout=None)
    clock = _Clock()
    run.plan(fake, targets, policy, clock())
    waiter = Waiter(run, fake, policy, logging.getLogger("tests.fake_dataflows"), clock=clock, sleep=clock.sleep)
    assert waiter.wait()
    return {r.dataset_name: r for r in run.final_results()}


def test_the_engine_refreshes_the_dataflow_before_the_dataset_that_reads_it(pbi_fake_client):
    """upstream="refresh": the lineage read adds the dataflow; its transaction ends before the dataset's refresh
    starts, and both complete."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Sales ETL", polls=3)
    fake.add_dataset("Finance", "Sales", polls=2)
    fake.link_dataset("Finance", "Sales", ["Sales ETL"])
    results = _refresh(fake, [Refresh("Sales", "Finance")])
    flow, sales = results["Sales ETL"], results["Sales"]
    assert (flow.kind, flow.status, flow.depth) == ("dataflow", RefreshStatus.COMPLETED, 0)
    assert (sales.kind, sales.status, sales.depth) == ("standard", RefreshStatus.COMPLETED, 1)
    assert parse_timestamp(flow.end) <= parse_timestamp(sales.start)
    fake.start_dataflow.assert_called_once()
    fake.dataset_upstream_dataflows.assert_called_once()
    [transaction] = fake.refresh_history(flow.workspace_id, flow.dataset_id, item="dataflow")
    assert (transaction.request_id, transaction.refresh_type) == (flow.refresh_id, "OnDemand")


def test_a_failed_dataflow_skips_the_dataset_that_reads_it(pbi_fake_client):
    """When the upstream dataflow fails, the dataset is not refreshed: it ends Skipped, naming the dataflow."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Sales ETL", polls=1, outcome="Failed")
    fake.add_dataset("Finance", "Sales")
    fake.link_dataset("Finance", "Sales", ["Sales ETL"])
    results = _refresh(fake, [Refresh("Sales", "Finance")])
    assert results["Sales ETL"].status == RefreshStatus.FAILED
    assert results["Sales ETL"].error_code == "DataflowRefreshFailed"
    assert results["Sales"].status == RefreshStatus.SKIPPED
    assert "Sales ETL" in (results["Sales"].reason or "")
    fake.trigger_refresh.assert_not_called()


def test_the_engine_orders_a_chain_of_dataflows_and_a_composite_model(pbi_fake_client):
    """Selected dataflow -> dataflow -> dataset -> composite model: each starts once what it reads has ended."""
    fake = pbi_fake_client
    fake.add_dataflow("Ingest", "Raw", polls=1)
    fake.add_dataflow("Ingest", "Clean", polls=2, upstream=["Raw"])
    fake.add_dataset("Finance", "Sales", polls=1)
    fake.add_dataset("Finance", "Board", polls=1)
    fake.link_dataset("Finance", "Sales", ["Clean"])
    fake.link_model("Board", ["Sales"])
    results = _refresh(fake, [Refresh("Board", "Finance"), Refresh("Sales", "Finance"), Dataflow("Clean", "Ingest")],
                       add_upstream=False)
    assert set(results) == {"Board", "Sales", "Clean"}  # upstream="order": Raw is not added
    assert all(r.status == RefreshStatus.COMPLETED for r in results.values())
    assert [results[n].depth for n in ("Clean", "Sales", "Board")] == [0, 1, 2]
    order = sorted(results.values(), key=lambda r: parse_timestamp(r.start))
    assert [r.dataset_name for r in order] == ["Clean", "Sales", "Board"]
    assert parse_timestamp(results["Clean"].end) <= parse_timestamp(results["Sales"].start)
    assert parse_timestamp(results["Sales"].end) <= parse_timestamp(results["Board"].start)
