"""Airflow-layer benchmark: DAG-parse cost of the decorator, polling cost and detection latency, fan-out.

1. DAG parse: a DAG file using ``@powerbi_refresh`` against the same DAG with a plain ``@task``, each
   parsed by ``DagBag`` in a fresh interpreter that has already imported Airflow (as the DAG
   processor has); median of repeated runs.
2. Status calls and detection latency for emulated refreshes of 10 s, 10 min and 1 h, with and
   without refresh history, through the same planner and waiter the operator uses; the emulator's
   clock and sleep are injected into the poll loop (time-scaled).
3. Fifty datasets from one task: wall time from the task's start (resolution, history reads) until
   every refresh is seen finished, against the longest refresh.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PARSE_RUNS = 9
REPEATS = 3
#: (label, emulated duration in seconds, emulator time scale)
DURATIONS = (("10 s", 10.0, 1.0), ("10 min", 600.0, 40.0), ("1 h", 3600.0, 120.0))
FAN_OUT = 50
FAN_OUT_DURATIONS = (2.0, 8.0)

_DAG = '''
from __future__ import annotations
import datetime as dt
from airflow.sdk import dag, task
{extra_import}

@dag(schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False)
def parse_bench():
    @task
    def extract():
        return ["Revenue"]

    {decorator}
    def refresh(names):
        return names

    refresh(extract())

parse_bench()
'''

_PARSE = textwrap.dedent('''
    import os, sys, time
    import airflow
    from airflow.dag_processing.dagbag import DagBag
    started = time.process_time()  # CPU time of this process: robust to other load on the machine
    bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
    elapsed = time.process_time() - started
    assert not bag.import_errors, bag.import_errors
    print(elapsed)
''')


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# --- 1. DAG parse ------------------------------------------------------------------------------


def parse_rows() -> list[tuple[str, ...]]:
    variants = {
        "plain @task": ("", "@task"),
        "@powerbi_refresh": ("from pbi_taskflow import powerbi_refresh", '@powerbi_refresh(workspace="Sales")'),
        "@task.powerbi_refresh": ("", '@task.powerbi_refresh(workspace="Sales")'),
    }
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as home:
        # Bytecode caching on (in a private prefix), as in a deployment where installed packages have .pyc files.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update({"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "PYTHONPYCACHEPREFIX": str(Path(home) / "pycache")})
        files = {}
        for label, (extra_import, decorator) in variants.items():
            path = Path(home) / f"{label.strip('@').replace('.', '_').replace(' ', '_')}.py"
            path.write_text(_DAG.format(extra_import=extra_import, decorator=decorator))
            files[label] = path
        times: dict[str, list[float]] = {label: [] for label in variants}
        for path in files.values():  # warm-up: writes the bytecode caches, not counted
            subprocess.run([sys.executable, "-c", _PARSE, str(path)], env=env, capture_output=True, check=True)
        for _ in range(PARSE_RUNS):
            for label, path in files.items():  # interleaved, so machine noise hits every variant alike
                out = subprocess.run([sys.executable, "-c", _PARSE, str(path)], env=env, capture_output=True, text=True,
                                     check=True)
                times[label].append(float(out.stdout.strip().splitlines()[-1]))
        medians = {label: _median(values) for label, values in times.items()}
    base = medians["plain @task"]
    return [(label, f"{m * 1000:.1f}", f"{(m - base) * 1000:+.1f}") for label, m in medians.items()]


# --- 2. polling cost and detection latency -----------------------------------------------------


def _client(emu: Any) -> Any:
    from pbi_taskflow.settings import ConnectionSettings

    return ConnectionSettings.from_mapping(emu.settings()).build_client()


def _watch(emu: Any, client: Any, names: Sequence[str], *, poll_min: float, max_concurrency: int = 8) -> dict[str, Any]:
    """Plan, start and wait like the operator does (worker mode), on the emulator's clock."""
    from pbi_taskflow.execution import RefreshRun, merge_targets
    from pbi_taskflow.models import Refresh, RefreshOptions, parse_timestamp
    from pbi_taskflow.policy import RefreshPolicy
    from pbi_taskflow.waiter import Waiter

    logger = logging.getLogger("bench.airflow")
    logger.setLevel(logging.WARNING)
    clock: Callable[[], float] = lambda: emu.clock().timestamp()
    policy = RefreshPolicy(poll_min=poll_min, poll_max=600.0, max_concurrency=max_concurrency, timeout=None)
    started_wall = time.perf_counter()
    targets = merge_targets(client.resolve(Refresh(n, "Bench"), None, RefreshOptions()) for n in names)
    run = RefreshRun()
    run.plan(client, targets, policy, clock())
    waiter = Waiter(run, client, policy, logger, clock=clock, sleep=emu.sleep)
    waiter.start()
    waiter.wait()
    seen = emu.clock()
    wall = time.perf_counter() - started_wall
    results = run.final_results()
    ends = [parse_timestamp(r.end) for r in results]
    last_end = max(e for e in ends if e is not None)
    return {
        "status_calls": waiter.status_calls,
        "latency": (seen - last_end).total_seconds(),
        "wall": wall,
        "statuses": {r.status.value for r in results},
    }


def latency_rows() -> list[tuple[str, ...]]:
    from pbi_taskflow import retry
    from pbi_taskflow.emulator import Emulator

    retry.set_testing(True)
    rows = []
    try:
        for label, duration, scale in DURATIONS:
            for with_history in (True, False):
                runs = []
                for _ in range(REPEATS):
                    with Emulator(time_scale=scale) as emu:
                        emu.add_workspace("Bench")
                        emu.add_dataset("Bench", "Model", duration=duration)
                        if with_history:
                            for ago in (1, 2, 3):
                                emu.add_history("Model", duration=duration, ago=ago * 86_400.0)
                        runs.append(_watch(emu, _client(emu), ["Model"], poll_min=5.0))
                rows.append(
                    (
                        label,
                        "yes" if with_history else "no",
                        f"x{scale:g}",
                        f"{_median([r['status_calls'] for r in runs]):g}",
                        f"{_median([r['latency'] for r in runs]):.1f}",
                        ",".join(sorted(set().union(*(r["statuses"] for r in runs)))),
                    )
                )
    finally:
        retry.set_testing(False)
    return rows


# --- 3. fan-out ----------------------------------------------------------------------------------


def fan_out_rows() -> list[tuple[str, ...]]:
    from pbi_taskflow import retry
    from pbi_taskflow.emulator import Emulator

    retry.set_testing(True)
    rows = []
    try:
        low, high = FAN_OUT_DURATIONS
        step = (high - low) / (FAN_OUT - 1)
        for with_history in (True, False):
            runs = []
            for _ in range(REPEATS):
                with Emulator(time_scale=1.0) as emu:
                    emu.add_workspace("Bench")
                    names = [f"Model {i:02d}" for i in range(FAN_OUT)]
                    for i, name in enumerate(names):
                        emu.add_dataset("Bench", name, duration=low + i * step)
                        if with_history:
                            emu.add_history(name, duration=low + i * step, ago=86_400.0)
                    runs.append(_watch(emu, _client(emu), names, poll_min=1.0, max_concurrency=FAN_OUT))
            wall = _median([r["wall"] for r in runs])
            rows.append(
                (
                    f"{FAN_OUT} datasets, {low:g}-{high:g} s",
                    "yes" if with_history else "no",
                    f"{wall:.2f}",
                    f"{wall - high:+.2f}",
                    f"{_median([r['status_calls'] for r in runs]):g}",
                    ",".join(sorted(set().union(*(r["statuses"] for r in runs)))),
                )
            )
    finally:
        retry.set_testing(False)
    return rows


def main(emit: Callable[[str], None] = print) -> None:
    emit(f"DAG parse in a fresh interpreter with Airflow imported (DagBag of one file, CPU ms); median of {PARSE_RUNS}.")
    emit(_table(("variant", "parse ms", "vs plain @task"), parse_rows()))
    emit("Goal: the decorator adds at most 5 ms.")
    emit("")
    emit(
        "One standard refresh, poll_interval 5 s, max 600 s; emulated time (x = time scale); "
        f"median of {REPEATS}. Latency = emulated seconds from the refresh's end to the task seeing it."
    )
    emit(_table(("refresh", "history", "scale", "status calls", "detect latency s", "outcome"), latency_rows()))
    emit("Goal for 1 h with history: at most 15 status calls and detection within 30 s.")
    emit("")
    emit(f"{FAN_OUT} datasets from one task (max_concurrency {FAN_OUT}, poll_interval 1 s); real time; median of {REPEATS}.")
    emit(_table(("workload", "history", "wall s", "vs longest", "status calls", "outcome"), fan_out_rows()))
    emit(f"Goal: done within the longest refresh ({FAN_OUT_DURATIONS[1]:g} s) plus 2 s.")


if __name__ == "__main__":
    main()
