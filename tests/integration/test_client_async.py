"""AsyncPowerBIClient against the emulator: status, history, cancel, retries and token renewal in one loop."""

from __future__ import annotations

import asyncio

import pytest

from pbi_taskflow.client.models import Refresh, RefreshStatus
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.errors import InvalidRequestError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cold_token_cache")]


@pytest.fixture
def setup(emulator):
    """Sales/Revenue on a 20x emulator; returns (emulator, settings)."""
    emulator.time_scale = 20.0
    emulator.add_workspace("Sales")
    emulator.add_dataset("Sales", "Revenue", duration=4.0)
    emulator.add_dataset("Sales", "Costs", duration=600.0)
    return emulator, ConnectionSettings.from_mapping(emulator.airflow_conn(), conn_id="powerbi_default")


def _handshakes(emu) -> int:
    return emu.tls_handshakes[0]


def _start_costs(settings):
    """Start an enhanced refresh of Costs (10 min at 20x) with the sync client; return its handle."""
    with settings.build_client() as sync:
        return sync.trigger_refresh(sync.resolve(Refresh("Costs", "Sales", type="Full")))


def _recording_sleep():
    """``(waits, sleep)``: an async sleep that records its seconds and returns at once."""
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    return waits, fake_sleep


def test_async_client_watches_several_refreshes_in_one_loop(setup):
    """Standard and enhanced refreshes are followed concurrently to their end."""
    _emu, settings = setup
    with settings.build_client() as sync:
        standard = sync.trigger_refresh(sync.resolve(Refresh("Revenue", "Sales")))
        enhanced = sync.trigger_refresh(sync.resolve(Refresh("Costs", "Sales", type="Full")))

    async def watch(client, handle):
        for _ in range(400):
            state = await client.get_refresh_state(handle)
            if state.status.is_terminal:
                return state
            await asyncio.sleep(0.05)
        raise AssertionError("not finished")

    async def main():
        async with settings.build_async_client() as client:
            first = await client.get_refresh_state(enhanced)
            await client.cancel_refresh(enhanced)
            done = await asyncio.gather(watch(client, standard), watch(client, enhanced))
            history = await client.refresh_history(standard.workspace_id, standard.dataset_id)
            return first, done, history

    first, (std_state, enh_state), history = asyncio.run(main())
    assert not first.status.is_terminal
    assert std_state.status is RefreshStatus.COMPLETED
    assert enh_state.status is RefreshStatus.CANCELLED
    assert history[0].request_id.lower() == standard.refresh_id.lower()


def test_async_client_retries_throttling_and_renews_tokens(setup):
    """A 429 is retried after Retry-After (async sleep) and an expired token is renewed once."""
    emu, settings = setup
    with settings.build_client() as sync:
        handle = sync.trigger_refresh(sync.resolve(Refresh("Costs", "Sales")))
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main():
        async with settings.build_async_client(retry=RetryPolicy(async_sleep=fake_sleep)) as client:
            emu.inject("history", "throttle", retry_after=5)
            first = await client.get_refresh_state(handle)
            assert client.throttles == {(handle.workspace_id, handle.dataset_id): [1, 5.0]}
            emu.expire_tokens()
            second = await client.get_refresh_state(handle)
            running = await client.running_refresh(handle.workspace_id, handle.dataset_id)
            with pytest.raises(InvalidRequestError):
                await client.cancel_refresh(handle)
            return first, second, running

    first, second, running = asyncio.run(main())
    assert waits == [5.0]
    assert not first.status.is_terminal
    assert not second.status.is_terminal
    assert running is not None
    assert emu.count("token") == 2
    assert emu.count(method="DELETE") == 0


def test_async_client_resolves_names(setup):
    """get_workspace/get_dataset follow the same name rules as the sync client."""
    _emu, settings = setup

    async def main():
        async with settings.build_async_client() as client:
            ws = await client.get_workspace("sales")
            return ws, await client.get_dataset(ws, "REVENUE")

    ws, ds = asyncio.run(main())
    assert ws.name == "Sales"
    assert ds.name == "Revenue"


@pytest.mark.parametrize("fault", ["drop", "error"])
def test_async_client_retries_dropped_and_failed_status_calls(setup, fault):
    """A dropped connection or a 503 on a details call is retried; nothing is cancelled."""
    emu, settings = setup
    handle = _start_costs(settings)
    waits, fake_sleep = _recording_sleep()

    async def main():
        async with settings.build_async_client(retry=RetryPolicy(async_sleep=fake_sleep, jitter=0.0)) as client:
            emu.inject("details", fault)
            return await client.get_refresh_state(handle)

    state = asyncio.run(main())
    assert not state.status.is_terminal
    assert waits == [1.0]
    assert emu.count(method="DELETE") == 0


def test_async_clients_of_one_connection_share_one_pooled_client_and_its_connections(setup):
    """Twenty clients of one connection in one loop reuse one TLS connection; the last aclose closes it."""
    from pbi_taskflow.client.pool import shared_pool

    emu, settings = setup
    handle = _start_costs(settings)
    before = _handshakes(emu)

    async def main():
        clients = [settings.build_async_client() for _ in range(20)]
        states = [await client.get_refresh_state(handle) for client in clients]  # one call at a time
        during = shared_pool().clients()
        lanes = (await clients[0]._lease.client()).lanes
        for client in clients:
            await client.aclose()
        return states, during, lanes, shared_pool().clients()

    states, during, lanes, after = asyncio.run(main())
    assert all(not s.status.is_terminal for s in states)
    assert during == 1
    assert after == 0
    assert all(lane.is_closed for lane in lanes)
    assert _handshakes(emu) - before <= 2  # the API connection, and the token endpoint's
    assert emu.count("token") == 1


def test_a_dropped_connection_fails_only_the_call_on_it(setup):
    """While ten waits poll over the shared client, a connection cut mid-call costs that call one retry."""
    emu, settings = setup
    handle = _start_costs(settings)
    waits, fake_sleep = _recording_sleep()

    async def poll(client, rounds):
        return [await client.get_refresh_state(handle) for _ in range(rounds)]

    async def main():
        clients = [settings.build_async_client(retry=RetryPolicy(async_sleep=fake_sleep, jitter=0.0)) for _ in range(10)]
        await clients[0].get_refresh_state(handle)  # warm: token and first connection
        emu.inject("details", "drop")
        try:
            return await asyncio.gather(*(poll(client, 3) for client in clients))
        finally:
            for client in clients:
                await client.aclose()

    calls_before = emu.count("details")
    results = asyncio.run(main())
    assert all(not state.status.is_terminal for states in results for state in states)
    assert waits == [1.0]  # exactly one call was cut and retried; every other call succeeded first time
    assert emu.count("details") - calls_before == 1 + 30 + 1
    assert emu.count(method="DELETE") == 0


def test_an_explicit_httpx_client_is_used_and_left_open(setup):
    """``client=`` bypasses the pool; aclose() leaves that client to its owner."""
    import httpx

    from pbi_taskflow.client.pool import shared_pool, ssl_context

    _emu, settings = setup

    async def main():
        async with httpx.AsyncClient(verify=ssl_context(settings.ca_bundle)) as own:
            client = settings.build_async_client(client=own)
            workspace = await client.get_workspace("Sales")
            pooled = shared_pool().clients()
            await client.aclose()
            return workspace, pooled, own.is_closed

    workspace, pooled, closed = asyncio.run(main())
    assert workspace.name == "Sales"
    assert pooled == 0
    assert not closed
