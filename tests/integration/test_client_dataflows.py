"""Both clients' dataflow calls against the emulator: names, refresh and transactions, cancel, lineage links,
retries of reads and of the refresh POST, and the allow-list."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pbi_taskflow.client.models import DataflowInfo, RefreshStatus, UpstreamDataflow
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.errors import (
    AmbiguousNameError,
    AmbiguousRefreshRequestError,
    ConfigurationError,
    NotFoundError,
    RefreshAlreadyRunningError,
    UnknownNameError,
    WorkspaceNotAllowedError,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cold_token_cache")]


@pytest.fixture
def chain(emulator: Any) -> tuple[Any, ConnectionSettings]:
    """Raw Ingest (Landing) <- Sales ETL (Finance) <- dataset Sales (Finance), on a 20x emulator."""
    emulator.time_scale = 20.0
    emulator.add_workspace("Landing")
    emulator.add_workspace("Finance")
    emulator.add_dataflow("Landing", "Raw Ingest", duration=2.0)
    emulator.add_dataflow("Finance", "Sales ETL", duration=4.0, upstream=["Raw Ingest"])
    emulator.add_dataset("Finance", "Sales")
    emulator.add_dataset("Finance", "Stock")
    emulator.link_dataset("Finance", "Sales", upstream_dataflows=["Sales ETL", "Raw Ingest"])
    return emulator, ConnectionSettings.from_mapping(emulator.airflow_conn(), conn_id="powerbi_default")


def _client(settings: ConnectionSettings, **kw: Any) -> Any:
    waits: list[float] = []
    kw.setdefault("retry", RetryPolicy(sleep=waits.append, jitter=0.0))
    client = settings.build_client(**kw)
    client.waits = waits
    return client


def _wait_until_ended(client: Any, dataflow: DataflowInfo, limit: float = 20.0) -> list[Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        transactions = client.dataflow_transactions(dataflow)
        if transactions and transactions[0].status.is_terminal:
            return list(transactions)
        time.sleep(0.05)
    raise AssertionError("the dataflow refresh did not end in time")


def test_names_resolve_to_dataflows_with_the_dataset_messages(chain: Any) -> None:
    """By name (any case) or id; ambiguous names list the candidates, unknown ones the closest names."""
    emu, settings = chain
    emu.add_dataflow("Finance", "sales etl")
    etl = emu.dataflow("Sales ETL")
    with _client(settings) as client:
        assert [d.name for d in client.list_dataflows("Landing")] == ["Raw Ingest"]
        assert client.get_dataflow("Finance", etl.id) == DataflowInfo(etl.id, "Sales ETL", etl.workspace_id, None,
                                                                  "owner@contoso.com")
        with pytest.raises(AmbiguousNameError, match="dataflow name 'SALES ETL' in workspace 'Finance' is ambiguous"):
            client.get_dataflow("Finance", "SALES ETL")
        with pytest.raises(UnknownNameError, match="Closest names: 'Raw Ingest'") as unknown:
            client.get_dataflow("Landing", "Raw Ingst")
    assert unknown.value.workspace == "Landing"
    assert unknown.value.dataset is None


def test_refresh_runs_to_its_end_and_a_second_one_is_refused(chain: Any) -> None:
    """The POST returns when it was sent; the transaction started since then ends Completed (Power BI: Success);
    a refresh while it runs raises RefreshAlreadyRunningError naming the dataflow, never retried."""
    emu, settings = chain
    with _client(settings) as client:
        etl = client.resolve_dataflow("Sales ETL", "Finance")
        requested_at = client.trigger_dataflow_refresh(etl, notify_option="MailOnFailure")
        with pytest.raises(RefreshAlreadyRunningError, match="refresh of this dataflow is running") as running:
            client.trigger_dataflow_refresh(etl)
        [done] = _wait_until_ended(client, etl)
    assert "dataflow 'Sales ETL'" in str(running.value)
    assert (done.status, done.raw_status, done.refresh_type) == (RefreshStatus.COMPLETED, "Success", "OnDemand")
    assert done.start is not None
    assert done.start >= requested_at.isoformat()[:19]
    assert emu.count("dataflow_refresh") == 2
    assert next(r.body for r in emu.requests if r.endpoint == "dataflow_refresh") == {"notifyOption": "MailOnFailure"}


def test_a_failed_refresh_and_cancel(chain: Any) -> None:
    """A Failed transaction reads Failed; cancel marks a running one (it ends Cancelled), then reports it concluded."""
    emu, settings = chain
    emu.set_dataflow_refresh("Raw Ingest", outcome="Failed", duration=0.5)
    with _client(settings) as client:
        raw = client.get_dataflow("Landing", "Raw Ingest")
        client.trigger_dataflow_refresh(raw)
        assert [t.status for t in _wait_until_ended(client, raw)] == [RefreshStatus.FAILED]
        emu.set_dataflow_refresh("Raw Ingest", duration=600)
        client.trigger_dataflow_refresh(raw)
        running = client.dataflow_transactions(raw)[0]
        assert running.status is RefreshStatus.IN_PROGRESS
        assert running.end is None
        assert client.cancel_dataflow_transaction(raw, running.id) == "successfullyMarked"
        assert client.cancel_dataflow_transaction(raw, running.id) == "alreadyConcluded"
        assert client.dataflow_transactions(raw)[0].status is RefreshStatus.CANCELLED
    assert emu.dataflow("Raw Ingest").history()[0].cancelled_at is not None


def test_lineage_links_of_datasets_and_dataflows(chain: Any) -> None:
    """Datasets and dataflows name the dataflows they read with their workspaces, across workspaces."""
    emu, settings = chain
    landing, finance = emu.state.workspace("Landing").id, emu.state.workspace("Finance").id
    etl, raw, sales = emu.dataflow("Sales ETL").id, emu.dataflow("Raw Ingest").id, emu.state.dataset("Sales").id
    with _client(settings) as client:
        links = client.dataset_upstream_dataflows("Finance")
        assert client.dataset_upstream_dataflows("Finance", "Stock") == []
        assert client.dataset_upstream_dataflows("Finance", "sales") == links
        upstream = client.dataflow_upstream_dataflows(client.get_dataflow("Finance", "Sales ETL"))
    assert links == [UpstreamDataflow(sales, etl, finance), UpstreamDataflow(sales, raw, landing)]
    assert upstream == [UpstreamDataflow(etl, raw, landing)]


def test_reads_are_retried_and_the_refresh_post_only_when_it_did_not_arrive(chain: Any) -> None:
    """A throttled read or POST waits and is sent again; a POST whose answer was lost is not: the caller is told
    to look for the transaction it may have started."""
    emu, settings = chain
    with _client(settings) as client:
        etl = client.get_dataflow("Finance", "Sales ETL")
        emu.inject("dataflow_transactions", "error", status=503)
        emu.inject("dataflow_refresh", "throttle", retry_after=2)
        assert client.dataflow_transactions(etl) == []
        client.trigger_dataflow_refresh(etl)
        assert client.waits == [1.0, 2.0]
        _wait_until_ended(client, etl)
        emu.inject("dataflow_refresh", "drop_after")
        with pytest.raises(AmbiguousRefreshRequestError, match="may have reached Power BI") as lost:
            client.trigger_dataflow_refresh(etl)
        assert client.dataflow_transactions(etl)[0].start >= (lost.value.requested_at or "")[:19]
    assert emu.count("dataflow_refresh") == 3


def test_allow_list_bad_options_and_unknown_ids(chain: Any) -> None:
    """resolve_dataflow enforces the allow-list before any call; a bad notify option fails before the POST; an
    unknown dataflow id is NotFoundError naming it."""
    emu, settings = chain
    with _client(settings, allowed_workspaces=["Landing"]) as client:
        with pytest.raises(WorkspaceNotAllowedError):
            client.resolve_dataflow("Sales ETL", "Finance")
        assert emu.count() == 0
        raw = client.resolve_dataflow("Raw Ingest", "Landing")
        with pytest.raises(ConfigurationError, match="MailOnCompletion"):
            client.trigger_dataflow_refresh(raw, notify_option="MailOnCompletion")
        ghost = DataflowInfo("00000000-0000-0000-0000-000000000000", "Ghost", raw.workspace_id)
        with pytest.raises(NotFoundError, match="dataflow 'Ghost'"):
            client.dataflow_transactions(ghost)
    assert emu.count("dataflow_refresh") == 0


def test_async_client_dataflow_calls(chain: Any) -> None:
    """The async client lists, resolves, refreshes, reads transactions and links, and cancels like the sync one."""
    emu, settings = chain
    emu.set_dataflow_refresh("Sales ETL", duration=600)

    async def main() -> tuple[Any, ...]:
        async with settings.build_async_client(retry=RetryPolicy(async_sleep=_no_wait, jitter=0.0)) as client:
            etl = await client.get_dataflow("Finance", "sales etl")
            emu.inject("dataflow_refresh", "throttle", retry_after=1)
            await client.trigger_dataflow_refresh(etl)
            with pytest.raises(RefreshAlreadyRunningError):
                await client.trigger_dataflow_refresh(etl)
            [running] = await client.dataflow_transactions(etl)
            cancelled = await client.cancel_dataflow_transaction(etl, running.id)
            [ended] = await client.dataflow_transactions(etl)
            links = await client.dataset_upstream_dataflows("Finance", "Sales")
            upstream = await client.dataflow_upstream_dataflows(etl)
            names = [d.name for d in await client.list_dataflows("Landing")]
            return running, cancelled, ended, links, upstream, names

    running, cancelled, ended, links, upstream, names = asyncio.run(main())
    assert (running.status, cancelled, ended.status) == (RefreshStatus.IN_PROGRESS, "successfullyMarked",
                                                         RefreshStatus.CANCELLED)
    assert [x.dataflow_id for x in links] == [emu.dataflow("Sales ETL").id, emu.dataflow("Raw Ingest").id]
    assert [x.dataflow_id for x in upstream] == [emu.dataflow("Raw Ingest").id]
    assert names == ["Raw Ingest"]
    assert emu.count("dataflow_refresh") == 3


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)
