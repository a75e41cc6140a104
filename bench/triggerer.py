"""Triggerer benchmark: N concurrent deferred refresh waits in one process and one event loop.

Three processes, so that each figure belongs to what it names:

- the emulator (its own process: its CPU, memory and sockets are not the triggerer's);
- the triggerer: N ``PowerBIRefreshOperator(deferrable=True)`` tasks are run up to their defer against
  the emulator, their triggers are rebuilt from ``serialize()`` (as Airflow's triggerer does), the
  token cache is emptied (a triggerer is not the worker that started the refreshes), and then every
  trigger's ``run()`` is started in one asyncio loop next to a ticker task that measures loop lag;
- this process, which samples the triggerer's RSS, CPU time and sockets from outside (psutil) and
  reads the emulator's request log and TLS handshake count.

Refreshes last ``REFRESH_SECONDS`` (real time: the trigger polls on the wall clock) with a history
of that duration; every tenth one fails, so "correct" means each wait ends with its own dataset's
outcome. Lateness is the time from a refresh's end (Power BI's ``endTime``) to its trigger's event.
The longest garbage-collection pause of the triggerer is reported next to the worst loop lag: a full
collection walks the whole process heap (Airflow's modules included) and stops the loop while it runs.

``python -m bench triggerer`` runs N = 100 and 1,000 (about four minutes); ``python -m bench.triggerer
--quick`` runs 100, ``python -m bench.triggerer N ...`` the sizes given.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

SIZES = (100, 1000)
REFRESH_SECONDS = 60.0
#: Datasets per workspace (name resolution lists a workspace's datasets).
PER_WORKSPACE = 50
FAIL_EVERY = 10
#: Operators run up to their defer in this many threads (setup only; not measured).
SETUP_THREADS = 8
TICK = 0.05
SAMPLE_EVERY = 0.25
#: Goals at 1,000 waits: MB over idle, worst loop lag s, sockets, CPU ms per status call, lateness s.
GOAL_RSS_MB = 60.0
GOAL_LAG = 0.1
GOAL_SOCKETS = 100
GOAL_CPU_MS_PER_CALL = 3.0
GOAL_LATENESS = 2.0
GOAL_AT = 1000


# --- the emulator process ----------------------------------------------------------------------------


def _emulator_process(conn: Any, n: int, duration: float) -> None:
    from pbi_taskflow.emulator import Emulator

    with Emulator() as emu:
        for i in range(n):
            workspace = _workspace(i)
            if i % PER_WORKSPACE == 0:
                emu.add_workspace(workspace)
            failing = i % FAIL_EVERY == FAIL_EVERY - 1
            emu.add_dataset(workspace, _dataset(i), duration=duration, outcome="Failed" if failing else "Completed")
            for ago in (1, 2, 3):
                emu.add_history(_dataset(i), duration=duration, ago=ago * 86_400.0)
        conn.send(emu.airflow_conn_json())
        while True:
            command = conn.recv()
            if command == "stop":
                return
            handshakes, failed = emu.tls_handshakes
            conn.send({"status": emu.count("history") + emu.count("details"), "tokens": emu.count("token"),
                       "all": emu.count(), "handshakes": handshakes, "handshake_failures": failed})


def _workspace(i: int) -> str:
    return f"Bench {i // PER_WORKSPACE:02d}"


def _dataset(i: int) -> str:
    return f"Model {i:04d}"


# --- the triggerer process -----------------------------------------------------------------------------


_setup = threading.local()
_setup_clients: list[Any] = []


def _defer_one(i: int) -> dict[str, Any]:
    """Run task ``i`` up to its defer; return its trigger's ``serialize()`` keyword arguments.

    The tasks of one set-up thread share a sync client (a task in a worker builds its own, and loads its
    CA bundle, which would make the set-up, not measured, outlast the refreshes it starts).
    """
    from airflow.sdk.exceptions import TaskDeferred

    from pbi_taskflow.airflow.hook import PowerBIHook
    from pbi_taskflow.airflow.operator import PowerBIRefreshOperator
    from pbi_taskflow.client.models import Refresh

    if getattr(_setup, "client", None) is None:
        _setup.client = PowerBIHook("powerbi_default").get_client()
        _setup_clients.append(_setup.client)
    op = PowerBIRefreshOperator(task_id=f"refresh_{i}", refreshes=Refresh(_dataset(i), _workspace(i)),
                                deferrable=True, timeout=3600)
    op._client_obj = _setup.client
    try:
        op.execute({})
    except TaskDeferred as deferred:
        return dict(deferred.trigger.serialize()[1])
    msg = f"task {i} did not defer"
    raise RuntimeError(msg)


class _GcPauses:
    """A ``gc.callbacks`` hook keeping the longest garbage-collection pause (it stops the event loop too)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._started)


def _triggerer_process(conn: Any, conn_json: str, n: int, log_path: str) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    os.environ["AIRFLOW_CONN_POWERBI_DEFAULT"] = conn_json
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for stream in (1, 2):  # the task and trigger logs are written (as a triggerer does), to a file
        os.dup2(log_fd, stream)
    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger
    from pbi_taskflow.client.auth import clear_token_caches

    setup_started = time.perf_counter()
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        payloads = list(pool.map(_defer_one, range(n)))
    for client in _setup_clients:
        client.close()
    _setup_clients.clear()
    setup = time.perf_counter() - setup_started
    clear_token_caches()
    triggers = [PowerBIRefreshTrigger(**payload) for payload in payloads]
    del payloads
    gc.collect()
    print("=== wait phase ===", flush=True)
    conn.send(("idle", setup))
    conn.recv()  # go

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[float, dict[str, Any]]] = []
        worst_lag = worst_at = 0.0
        started = time.time()
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal worst_lag, worst_at
            while not done.is_set():
                before = loop.time()
                await asyncio.sleep(TICK)
                lag = loop.time() - before - TICK
                if lag > worst_lag:
                    worst_lag, worst_at = lag, time.time() - started

        async def wait(trigger: Any) -> None:
            async for event in trigger.run():
                seen.append((time.time(), event.payload))

        tick = asyncio.create_task(ticker())
        await asyncio.gather(*(wait(t) for t in triggers))
        done.set()
        await tick
        return {"seen": seen, "worst_lag": worst_lag, "worst_at": worst_at, "started": started, "wall": time.time() - started}

    pauses = _GcPauses()
    gc.callbacks.append(pauses)
    try:
        result = asyncio.run(main())
    finally:
        gc.callbacks.remove(pauses)
    result["gc_pause"] = pauses.longest
    conn.send(result)


# --- measurement ---------------------------------------------------------------------------------------


class _Sampler(threading.Thread):
    """Samples a process's RSS and TCP sockets from outside until stopped; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self.peak_sockets = 0
        self.stopping = threading.Event()

    def sample(self) -> tuple[int, int]:
        rss = self.process.memory_info().rss
        sockets = len(self.process.net_connections(kind="tcp"))
        self.peak_rss, self.peak_sockets = max(self.peak_rss, rss), max(self.peak_sockets, sockets)
        return rss, sockets

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - the process ended
                return


def _expected(i: int) -> str:
    return "Failed" if i % FAIL_EVERY == FAIL_EVERY - 1 else "Completed"


def _judge(seen: Sequence[tuple[float, dict[str, Any]]], started: float) -> tuple[int, list[float], int]:
    """How many waits ended right (event ``done``, the dataset's own outcome), each one's lateness, and how many
    refreshes had ended before the waits started (their lateness would measure the set-up, so it is not counted).
    """
    from pbi_taskflow.client.models import parse_timestamp

    correct, lateness, early = 0, [], 0
    for at, payload in seen:
        results = payload.get("run", {}).get("results", [])
        if payload.get("status") != "done" or len(results) != 1:
            continue
        result = results[0]
        index = int(str(result.get("dataset_name", "")).rsplit(" ", 1)[-1])
        if result.get("status") == _expected(index):
            correct += 1
        end = parse_timestamp(result.get("end"))
        if end is not None and end.timestamp() < started:
            early += 1
        elif end is not None:
            lateness.append(at - end.timestamp())
    return correct, lateness, early


def _unexpected_warnings(log_path: str) -> list[str]:
    """Warning and error lines of the wait phase, other than the status of a refresh that failed (expected)."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        lines = log.read().split("=== wait phase ===", 1)[-1].splitlines()
    return [line for line in lines if any(level in line.lower() for level in ("[warning", "[error", "warning:", "error:"))
            and "status=Failed" not in line]


def measure(n: int, duration: float = REFRESH_SECONDS) -> dict[str, Any]:
    """Run N waits of refreshes lasting ``duration`` seconds; return the figures of the wait phase."""
    import tempfile

    ctx = multiprocessing.get_context("spawn")
    emu_conn, emu_child = ctx.Pipe()
    emulator = ctx.Process(target=_emulator_process, args=(emu_child, n, duration), daemon=True)
    emulator.start()
    trig_conn, trig_child = ctx.Pipe()
    triggerer = None
    log_fd, log_path = tempfile.mkstemp(prefix="bench-triggerer-", suffix=".log")
    os.close(log_fd)
    try:
        conn_json = emu_conn.recv()
        triggerer = ctx.Process(target=_triggerer_process, args=(trig_child, conn_json, n, log_path), daemon=True)
        triggerer.start()
        ready, setup = trig_conn.recv()
        if ready != "idle":
            raise RuntimeError("the triggerer process did not get ready")
        sampler = _Sampler(triggerer.pid or 0)
        idle_rss, idle_sockets = sampler.sample()
        sampler.peak_rss, sampler.peak_sockets = 0, 0
        cpu_before = sum(sampler.process.cpu_times()[:2])
        emu_conn.send("counts")
        before = emu_conn.recv()
        sampler.start()
        trig_conn.send("go")
        result = trig_conn.recv()
        cpu = sum(sampler.process.cpu_times()[:2]) - cpu_before
        sampler.sample()
        sampler.stopping.set()
        emu_conn.send("counts")
        after = emu_conn.recv()
        end_rss = sampler.process.memory_info().rss
    finally:
        emu_conn.send("stop")
        for process in (triggerer, emulator):
            if process is not None:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
    warnings = _unexpected_warnings(log_path)
    os.unlink(log_path)
    correct, lateness, early = _judge(result["seen"], result["started"])
    minutes = result["wall"] / 60.0
    status_calls = after["status"] - before["status"]
    return {
        "n": n,
        "wall": result["wall"],
        "rss_mb": (sampler.peak_rss - idle_rss) / 2**20,
        "end_rss_mb": (end_rss - idle_rss) / 2**20,
        "cpu_per_min": cpu / minutes,
        "cpu_ms_per_call": cpu * 1000 / max(1, status_calls),
        "status_per_min": status_calls / minutes,
        "tls": after["handshakes"] - before["handshakes"],
        "tls_failed": after["handshake_failures"] - before["handshake_failures"],
        "tokens": after["tokens"] - before["tokens"],
        "sockets": sampler.peak_sockets,
        "idle_sockets": idle_sockets,
        "lag": result["worst_lag"],
        "lag_at": result["worst_at"],
        "gc_pause": result["gc_pause"],
        "lateness": max(lateness) if lateness else float("nan"),
        "lateness_median": sorted(lateness)[len(lateness) // 2] if lateness else float("nan"),
        "correct": correct,
        "setup": setup,
        "ended_early": early,
        "events": len(result["seen"]),
        "warnings": len(warnings),
        "first_warnings": [w[:200] for w in warnings[:3]],
    }


# --- report ------------------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _goal_rows(m: dict[str, Any]) -> list[tuple[str, ...]]:
    from pbi_taskflow.client.pool import MAX_CONNECTIONS

    def row(goal: str, value: str, met: bool) -> tuple[str, ...]:
        return (goal, value, "met" if met else "MISSED")

    return [
        row(f"RSS over idle < {GOAL_RSS_MB:g} MB", f"{m['rss_mb']:.1f} MB", m["rss_mb"] < GOAL_RSS_MB),
        row(f"worst loop lag < {GOAL_LAG * 1000:g} ms", f"{m['lag'] * 1000:.0f} ms", m["lag"] < GOAL_LAG),
        row(f"sockets <= {GOAL_SOCKETS}", str(m["sockets"]), m["sockets"] <= GOAL_SOCKETS),
        row(f"TLS connections bounded by the pool: <= {MAX_CONNECTIONS} + 1 (Entra) open at once, none failed",
            f"peak {m['sockets']} open, {m['tls']} handshakes in all, {m['tls_failed']} failed",
            m["sockets"] <= MAX_CONNECTIONS + 1 + m["idle_sockets"] and m["tls_failed"] == 0),
        row(f"CPU per status call <= {GOAL_CPU_MS_PER_CALL:g} ms", f"{m['cpu_ms_per_call']:.2f} ms",
            m["cpu_ms_per_call"] <= GOAL_CPU_MS_PER_CALL),
        row("every wait correct", f"{m['correct']}/{m['n']}", m["correct"] == m["n"] and m["events"] == m["n"]),
        row(f"lateness < {GOAL_LATENESS:g} s", f"{m['lateness']:.2f} s", m["lateness"] < GOAL_LATENESS),
        row("1 token per process and app", str(m["tokens"]), m["tokens"] == 1),
    ]


def main(emit: Callable[[str], None] = print, sizes: Sequence[int] = SIZES, duration: float = REFRESH_SECONDS) -> None:
    emit(
        f"N deferred refresh tasks (PowerBIRefreshOperator(deferrable=True) up to its defer), their triggers run in "
        f"one asyncio loop; refreshes of {duration:g} s (real time) with history, every {FAIL_EVERY}th fails; "
        "the emulator in its own process. Figures cover the wait phase; RSS and sockets are peaks sampled every "
        f"{SAMPLE_EVERY:g} s from outside; idle = the triggerer process with its triggers built, before they run."
    )
    measured = [measure(n, duration) for n in sizes]
    headers = ("waits", "RSS over idle MB", "after MB", "CPU s/min", "CPU ms/status call", "status calls/min",
               "TLS conns", "sockets", "worst lag ms (when)", "longest GC ms", "lateness s (median/max)", "correct", "tokens", "warnings",
               "set-up s", "wall s")
    rows = [
        (
            str(m["n"]), f"{m['rss_mb']:.1f}", f"{m['end_rss_mb']:.1f}", f"{m['cpu_per_min']:.1f}",
            f"{m['cpu_ms_per_call']:.2f}", f"{m['status_per_min']:.0f}", f"{m['tls']} ({m['tls_failed']} failed)",
            f"{m['sockets']} (idle {m['idle_sockets']})", f"{m['lag'] * 1000:.0f} at {m['lag_at']:.0f} s",
            f"{m['gc_pause'] * 1000:.0f}",
            f"{m['lateness_median']:.2f}/{m['lateness']:.2f}", f"{m['correct']}/{m['n']}", str(m["tokens"]),
            str(m["warnings"]), f"{m['setup']:.0f}", f"{m['wall']:.0f}",
        )
        for m in measured
    ]
    emit(_table(headers, rows))
    for m in measured:
        if m["ended_early"]:
            emit(f"  at {m['n']} waits {m['ended_early']} refreshes ended during the set-up (no lateness counted)")
        for warning in m["first_warnings"]:
            emit(f"  warning at {m['n']} waits: {warning}")
    goal = next((m for m in measured if m["n"] == GOAL_AT), None)
    if goal is None:
        emit(f"(goals apply at {GOAL_AT} waits, not measured here)")
        return
    emit("")
    emit(f"Goals at {GOAL_AT} waits (a garbage collection of the whole process heap stops the loop too: compare the "
         "worst lag with the longest GC pause):")
    emit(_table(("goal", "measured", "verdict"), _goal_rows(goal)))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(sizes=[100] if args == ["--quick"] else [int(a) for a in args] or SIZES)
