"""Triggers in one event loop, as the triggerer runs them: nothing of ours blocks the loop, one token, one client."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import pytest

from pbi_taskflow.client.models import Refresh

pytestmark = pytest.mark.integration

#: asyncio's debug mode logs every callback (a task step included) that runs longer than this.
SLOW_CALLBACK = 0.05
TRIGGERS = 8


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing "):
            self.messages.append(message)


def _triggers(sales: Any) -> list[Any]:
    """One trigger per dataset, each watching the refresh its task started (standard and enhanced)."""
    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger
    from pbi_taskflow.client.auth import clear_token_caches
    from pbi_taskflow.client.settings import ConnectionSettings
    from pbi_taskflow.engine.policy import RefreshPolicy
    from pbi_taskflow.engine.run import RefreshRun

    for i in range(TRIGGERS):
        sales.add_dataset("Sales", f"Model {i}", duration=0.5 + 0.1 * i)
    policy = RefreshPolicy(poll_min=0.1, poll_max=0.5, timeout=None)
    triggers = []
    with ConnectionSettings.from_mapping(sales.settings()).build_client() as client:
        for i in range(TRIGGERS):
            handle = client.trigger_refresh(client.resolve(Refresh(f"Model {i}", "Sales", type="Full" if i % 2 else None)))
            run = RefreshRun()
            run.active[handle.refresh_id] = handle.to_dict()
            run.started[handle.refresh_id] = time.time()
            triggers.append(PowerBIRefreshTrigger(conn_id="powerbi_default", run=run.to_dict(), policy=policy.to_dict()))
    clear_token_caches()  # the triggerer is another process than the worker that started the refreshes
    sales.log.clear()
    return triggers


def test_triggers_in_one_loop_never_block_it_and_share_one_token_and_client(sales: Any) -> None:
    """Eight triggers run to their end under asyncio debug mode: no step of ours runs 50 ms or more.

    Connection lookup, settings, credentials, the CA bundle's TLS context and tokens are all set up off
    the loop; the triggers share one pooled client, which the last one closes.
    """
    from pbi_taskflow.airflow.compat import aget_connection
    from pbi_taskflow.client.pool import clear_ssl_contexts, shared_pool

    triggers = _triggers(sales)
    clear_ssl_contexts()  # the TLS context is built during the run, as in a fresh triggerer
    # Airflow's first connection lookup imports its supervisor module (~50 ms, on the loop); a triggerer
    # has imported it before it runs any trigger.
    asyncio.run(aget_connection("powerbi_default"))
    slow = _SlowCallbacks()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(slow)
    previous_level = asyncio_log.level
    asyncio_log.setLevel(logging.WARNING)
    handshakes = sales.tls_handshakes[0]

    async def main() -> tuple[list[Any], int]:
        asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK
        peak = 0

        async def watch(trigger: Any) -> Any:
            nonlocal peak
            async for event in trigger.run():
                peak = max(peak, shared_pool().clients())
                return event
            return None

        events = await asyncio.gather(*(watch(t) for t in triggers))
        return events, peak

    gc.collect()
    gc.disable()  # a collection of the test process's heap would stop whichever step allocates: not ours to judge
    try:
        events, pooled = asyncio.run(main(), debug=True)
    finally:
        gc.enable()
        asyncio_log.removeHandler(slow)
        asyncio_log.setLevel(previous_level)
    assert slow.messages == []
    assert [e.payload["status"] for e in events] == ["done"] * TRIGGERS
    assert sorted(e.payload["run"]["results"][0]["dataset_name"] for e in events) == [f"Model {i}" for i in range(TRIGGERS)]
    assert all(e.payload["run"]["results"][0]["status"] == "Completed" for e in events)
    assert sales.count("token") == 1
    assert pooled == 1
    assert sales.tls_handshakes[0] - handshakes <= TRIGGERS + 1  # bounded by the calls in flight at once, plus Entra
    assert sales.tls_handshakes[1] == 0


def test_triggers_starting_together_look_their_connection_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lookups of one connection under way at once are shared; a later one looks it up again."""
    from pbi_taskflow.airflow import compat as _compat
    from pbi_taskflow.airflow.trigger import _connection

    lookups: list[str] = []

    async def counting_lookup(conn_id: str) -> str:
        lookups.append(conn_id)
        number = len(lookups)
        await asyncio.sleep(0.01)
        return f"connection {conn_id} #{number}"

    monkeypatch.setattr(_compat, "aget_connection", counting_lookup)

    async def main() -> tuple[list[Any], Any]:
        together = await asyncio.gather(*(_connection("powerbi_default") for _ in range(50)), _connection("other"))
        return list(together), await _connection("powerbi_default")

    together, later = asyncio.run(main())
    assert together == ["connection powerbi_default #1"] * 50 + ["connection other #2"]
    assert later == "connection powerbi_default #3"


def test_the_trigger_class_imports_light_and_loads_the_rest_off_the_event_loop() -> None:
    """Airflow imports a trigger's class inside the triggerer's loop: ours pulls in no engine or client module then;
    the first trigger to run imports them in a worker thread, once, while the loop goes on."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent('''
        import asyncio, sys, threading
        import airflow.triggers.base
        import pbi_taskflow.trigger
        heavy = [m for m in ("pbi_taskflow.engine.run", "pbi_taskflow.client.aio", "pbi_taskflow.client.models",
                             "msal") if m in sys.modules]
        assert not heavy, heavy
        from pbi_taskflow.airflow import trigger
        threads = []
        real = trigger._import_modules
        def spy():
            threads.append(threading.current_thread() is threading.main_thread())
            real()
        trigger._import_modules = spy
        async def main():
            ticks = 0
            async def tick():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)
            ticker = asyncio.create_task(tick())
            await asyncio.gather(*(trigger._load_modules() for _ in range(20)))
            ticker.cancel()
            return ticks
        ticks = asyncio.run(main())
        assert threads == [False], threads
        assert all(m in sys.modules for m in trigger.MODULES)
        assert ticks > 1, ticks
        print("ok")
    ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "ok"


def test_the_first_trigger_freezes_the_start_up_heap_before_loading_the_refresh_modules() -> None:
    """Loading the refresh modules allocates enough to set off a full garbage collection, which walks the whole
    start-up heap with the interpreter lock held (a tenth of a second on a triggerer's heap, the event loop stalled
    meanwhile): the first trigger freezes that heap before it loads anything, so such a collection walks only what
    is new."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent('''
        import asyncio, gc
        import airflow.triggers.base
        from pbi_taskflow.airflow import trigger
        from pbi_taskflow.engine.policy import RefreshPolicy
        frozen_at_load = []
        def spy():
            frozen_at_load.append(gc.get_freeze_count())
            raise RuntimeError("stop here")
        trigger._import_modules = spy
        assert gc.get_freeze_count() == 0
        watcher = trigger.PowerBIRefreshTrigger(conn_id="powerbi_default", run={}, policy=RefreshPolicy().to_dict())
        async def main():
            return [event async for event in watcher.run()]
        try:
            asyncio.run(main())
        except RuntimeError as exc:
            assert str(exc) == "stop here", exc
        assert len(frozen_at_load) == 1 and frozen_at_load[0] > 10000, frozen_at_load
        print("ok")
    ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "ok"
