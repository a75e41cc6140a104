"""Blocking work of the async client and the trigger, on threads the event loop never waits to start.

``asyncio.to_thread`` runs work on the loop's default executor, which starts its threads from the loop's own
thread as work arrives, and starting a thread waits until the new thread runs. On a busy machine a new thread
can wait a tenth of a second and more for a CPU, and every coroutine of the loop (in a triggerer, every trigger
of the process) waits with it. :func:`run` uses an executor of its own whose threads are all started by a helper
thread that the loop does not wait for; the first calls of a process wait for them asynchronously.

Standard library only: the trigger's module imports it inside the triggerer's event loop.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import contextvars
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Threads of the executor (asyncio's default executor has ``cpu count + 4``, at most 32).
WORKERS = 6
#: Seconds the helper waits for all of them to be running before it hands the executor over anyway.
START_TIMEOUT = 30.0

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_starting = False
_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []


async def run(func: Callable[..., T], /, *args: Any) -> T:
    """``await asyncio.to_thread(func, *args)``, on this module's threads (context variables included)."""
    loop = asyncio.get_running_loop()
    executor = _executor if _executor is not None else await _ready(loop)
    call = functools.partial(contextvars.copy_context().run, func, *args)
    return await loop.run_in_executor(executor, call)


async def _ready(loop: asyncio.AbstractEventLoop) -> ThreadPoolExecutor:
    global _starting
    waiter: asyncio.Future[None] = loop.create_future()
    with _lock:
        if _executor is not None:
            return _executor
        _waiters.append((loop, waiter))
        start, _starting = not _starting, True
    if start:
        _thread.start_new_thread(_start, ())  # returns at once, unlike threading.Thread.start
    await waiter
    assert _executor is not None
    return _executor


def _start() -> None:
    """In the helper thread: start every thread of a new executor, then hand it to the waiting loops."""
    global _executor
    executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="pbi_taskflow-offloop")
    try:
        barrier = threading.Barrier(WORKERS, timeout=START_TIMEOUT)  # each submit finds no idle thread: a new one
        for done in [executor.submit(_meet, barrier) for _ in range(WORKERS)]:
            done.result()
        _start_airflow_lookup_thread()
    finally:
        with _lock:
            _executor = executor
            waiters = list(_waiters)
            _waiters.clear()
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                loop.call_soon_threadsafe(_resolve, waiter)


def _meet(barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()


def _start_airflow_lookup_thread() -> None:
    """Start the thread Airflow looks connections up on in a triggerer (asgiref's ``sync_to_async`` single-thread
    executor), which it would otherwise start from the loop at the first lookup. ``submit`` starts it here; the
    helper does not wait for the no-op to run (a slow lookup there must not hold up this executor)."""
    sync = sys.modules.get("asgiref.sync")
    executor = getattr(getattr(sync, "SyncToAsync", None), "single_thread_executor", None)
    if isinstance(executor, ThreadPoolExecutor):
        with contextlib.suppress(RuntimeError):  # shut down: nothing to start
            executor.submit(int)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _forget() -> None:
    """In a forked child: the parent's threads do not exist there, so its executor must not be used."""
    global _executor, _starting, _lock
    _lock = threading.Lock()
    _executor, _starting = None, False
    _waiters.clear()


os.register_at_fork(after_in_child=_forget)

__all__ = ["WORKERS", "run"]
