"""AsyncPowerBIClient against the emulator: status, history, cancel, retries and token renewal in one loop."""

from __future__ import annotations

import asyncio

import pytest

from pbi_taskflow.errors import InvalidRequestError
from pbi_taskflow.models import Refresh, RefreshStatus
from pbi_taskflow.retry import RetryPolicy
from pbi_taskflow.settings import ConnectionSettings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cold_token_cache")]


@pytest.fixture
def setup(emulator):
    """Sales/Revenue on a 20x emulator; returns (emulator, settings)."""
    emulator.time_scale = 20.0
    emulator.add_workspace("Sales")
    emulator.add_dataset("Sales", "Revenue", duration=4.0)
    emulator.add_dataset("Sales", "Costs", duration=600.0)
    return emulator, ConnectionSettings.from_mapping(emulator.airflow_conn(), conn_id="powerbi_default")


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
    with settings.build_client() as sync:
        handle = sync.trigger_refresh(sync.resolve(Refresh("Costs", "Sales", type="Full")))
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main():
        async with settings.build_async_client(retry=RetryPolicy(async_sleep=fake_sleep, jitter=0.0)) as client:
            emu.inject("details", fault)
            return await client.get_refresh_state(handle)

    state = asyncio.run(main())
    assert not state.status.is_terminal
    assert waits == [1.0]
    assert emu.count(method="DELETE") == 0
