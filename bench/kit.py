"""Test-kit benchmark: the one-time setup of a test session and the cost of one ``run_dag`` of a refresh DAG.

Every sample is a fresh interpreter (Airflow must be configured before its first import), doing what a
test session's first refresh test does: point Airflow at a new temporary home, create or copy its
SQLite metadata DB, start the emulator, and run a one-task ``@powerbi_refresh`` DAG (the refresh lasts
0.2 s on the emulator), then run it again to get its steady cost.

- one-time setup = wall time from the start of the worker to the end of its first ``run_dag``, minus
  the median steady ``run_dag``: Airflow's import, the database, the emulator, Airflow's lazy imports
  and the in-process Execution API of the first task. Interpreter and pytest start-up are not included.
- cold: empty database cache (the first session on a machine, or after an upgrade); warm: the cache
  holds the database of this installation (every later session); warm samples are repeated with
  Airflow's full in-process Execution API (``PBI_TASKFLOW_FULL_EXECUTION_API=1``) to show what the
  one-version API of ``run_dag`` saves.

Samples run with the environment as it is; when Airflow's modules have no compiled bytecode and
``PYTHONDONTWRITEBYTECODE`` is set, every process compiles Airflow's sources, so the samples are
repeated with a bytecode cache (``PYTHONPYCACHEPREFIX``, primed once) to show the figure of an
installation with bytecode (pip's default, ``make install``).

Goals: setup at most 5 s; one refresh ``run_dag`` at most 1 s (median). ``python -m bench.kit [samples]``.
"""

from __future__ import annotations

import atexit
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLES = 3
RUNS = 5
REFRESH_SECONDS = 0.2
CACHE_DIR_ENV = "PBI_TASKFLOW_CACHE_DIR"
FULL_API_ENV = "PBI_TASKFLOW_FULL_EXECUTION_API"


def _worker() -> dict[str, Any]:
    started, cpu_started = time.perf_counter(), time.process_time()
    from pbi_taskflow.testing.env import configure_airflow_env, migrate_db, remove_home

    cached = len(list(Path(os.environ[CACHE_DIR_ENV]).glob("*.db")))
    home = configure_airflow_env()
    atexit.register(remove_home, home)  # the temporary Airflow home goes when the worker exits
    migrate_db(cache=True)  # as the pytest plugin does
    db_s = time.perf_counter() - started

    from airflow.sdk import dag, task

    from pbi_taskflow import powerbi_refresh
    from pbi_taskflow.emulator import Emulator
    from pbi_taskflow.testing.certs import CA_ENV_VARS, combined_ca_bundle
    from pbi_taskflow.testing.runner import run_dag

    @dag(dag_id="bench_plain", schedule=None)
    def plain() -> None:
        @task
        def one() -> int:
            return 1

        one()

    @dag(dag_id="bench_refresh", schedule=None)
    def refresh_dag() -> None:
        @powerbi_refresh(workspace="Finance", poll_interval=0.1)
        def refresh() -> list[str]:
            return ["Sales"]

        refresh()

    emulator_started = time.perf_counter()
    with Emulator(port=0) as emu:
        emulator_s = time.perf_counter() - emulator_started
        emu.add_workspace("Finance")
        emu.add_dataset("Finance", "Sales", duration=REFRESH_SECONDS)
        os.environ["AIRFLOW_CONN_POWERBI_DEFAULT"] = emu.airflow_conn_json()
        bundle = combined_ca_bundle(emu.ca_bundle, home / "ca-bundle.pem")
        for name in CA_ENV_VARS:
            if os.environ.get(name):
                os.environ[name] = str(bundle)
        plain_dag, refresh = plain(), refresh_dag()

        first_started = time.perf_counter()
        first = run_dag(refresh)
        first_end, first_cpu_end = time.perf_counter(), time.process_time()
        assert first.state == "success", first.logs()

        timings: dict[str, list[float]] = {"plain": [], "refresh": []}
        for _ in range(RUNS):
            for name, which in (("plain", plain_dag), ("refresh", refresh)):
                run_started = time.perf_counter()
                result = run_dag(which)
                timings[name].append(time.perf_counter() - run_started)
                assert result.state == "success", result.logs()
    refresh_median = statistics.median(timings["refresh"])
    from pbi_taskflow.testing.execution_api import prepare_execution_api

    return {
        "execution_api": prepare_execution_api(),  # the decision run_dag made for this process
        "cache_entries_before": cached,
        "db_s": db_s,
        "emulator_s": emulator_s,
        "first_run_s": first_end - first_started,
        "setup_s": first_end - started - refresh_median,
        "setup_cpu_s": first_cpu_end - cpu_started,
        "plain_runs": timings["plain"],
        "refresh_runs": timings["refresh"],
    }


def _sample(env: dict[str, str], cache_dir: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.kit", "--worker"], env={**env, CACHE_DIR_ENV: str(cache_dir)},
                          capture_output=True, text=True, timeout=600, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        msg = f"kit benchmark worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _measure(env: dict[str, str], scratch: Path, samples: int) -> dict[str, list[dict[str, Any]]]:
    """``samples`` cold samples (each with an empty cache), then ``samples`` warm ones (cache filled by the first)."""
    cold = []
    for index in range(samples):
        cold.append(_sample(env, scratch / f"cold-{index}"))
    warm = [_sample(env, scratch / "cold-0") for _ in range(samples)]
    full_env = {**env, FULL_API_ENV: "1"}
    full = [_sample(full_env, scratch / "cold-0") for _ in range(samples)]
    assert all(s["cache_entries_before"] == 0 for s in cold), "a cold sample found a cached database"
    assert all(s["cache_entries_before"] == 1 for s in warm + full), "a warm sample found no cached database"
    assert all(s["execution_api"] == "lean" for s in cold + warm), "run_dag did not use the lean Execution API"
    assert all(s["execution_api"] == "full" for s in full), "the opt-out did not give Airflow's full Execution API"
    return {"cold": cold, "warm": warm, "full": full}


def _airflow_bytecode_share() -> float:
    """Share of Airflow's modules that have compiled bytecode next to them (what a fresh process can use)."""
    import importlib.util

    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        return float("nan")
    sources = list(Path(next(iter(spec.submodule_search_locations))).rglob("*.py"))
    compiled = sum(Path(importlib.util.cache_from_source(str(path))).is_file() for path in sources)
    return compiled / len(sources) if sources else float("nan")


def _report(label: str, data: dict[str, list[dict[str, Any]]]) -> None:
    def med(kind: str, key: str) -> float:
        return float(statistics.median(float(s[key]) for s in data[kind]))

    refresh_runs = [run for kind in ("cold", "warm") for s in data[kind] for run in s["refresh_runs"]]
    plain_runs = [run for kind in ("cold", "warm") for s in data[kind] for run in s["plain_runs"]]
    n = len(data["cold"])
    print(f"-- {label}: medians of {n} fresh processes per column --")
    print(f"{'measure':<58} {'cold':>7} {'warm':>7}  goal")
    rows = [
        ("import Airflow + create (cold) or copy (warm) the DB", "db_s", None),
        ("start the emulator", "emulator_s", None),
        ("first run_dag of the process (refresh DAG)", "first_run_s", None),
        ("one-time setup (all of the above - a steady run_dag)", "setup_s", 5.0),
        ("  CPU time of the process until then", "setup_cpu_s", None),
    ]
    for text, key, goal in rows:
        cold, warm = med("cold", key), med("warm", key)
        verdict = "" if goal is None else (
            f"<= {goal:.0f} s: cold {'met' if cold <= goal else 'MISSED'}, warm {'met' if warm <= goal else 'MISSED'}")
        print(f"{text:<58} {cold:7.2f} {warm:7.2f}  {verdict}")
    full = med("full", "setup_s")
    label = "  the same with Airflow's full Execution API (warm)"
    print(f"{label:<58} {'':7} {full:7.2f}  "
          f"lean/full = {med('warm', 'setup_s') / full:.2f}")
    refresh = statistics.median(refresh_runs)
    print(f"{f'run_dag, refresh DAG, {REFRESH_SECONDS:.1f} s refresh (median of {len(refresh_runs)})':<58} "
          f"{refresh:15.2f}  <= 1 s: {'met' if refresh <= 1.0 else 'MISSED'}")
    print(f"{f'run_dag, plain 1-task DAG (median of {len(plain_runs)})':<58} {statistics.median(plain_runs):15.2f}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    samples = int(args[0]) if args and args[0].isdigit() else SAMPLES
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PBI_TASKFLOW_DB_CACHE"}
    share = _airflow_bytecode_share()
    no_write = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory(prefix="pbi-bench-kit-") as scratch:
        root = Path(scratch)
        try:
            _report("this environment as it is", _measure(env, root / "as-is", samples))
            if share < 0.5 and no_write:
                compiled = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
                compiled["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
                _sample(compiled, root / "prime")  # compiles once; not counted
                _report("with compiled bytecode (PYTHONPYCACHEPREFIX, primed once)",
                        _measure(compiled, root / "compiled", samples))
        except RuntimeError as exc:
            print(exc)
            return
    print(f"note: {share:.0%} of Airflow's modules have compiled bytecode in this virtualenv; "
          f"PYTHONDONTWRITEBYTECODE is {'set' if no_write else 'not set'}"
          + (", so every process compiles Airflow's sources again (install with `make install`, which passes "
             "--compile-bytecode, or leave PYTHONDONTWRITEBYTECODE unset)." if share < 0.5 and no_write else "."))
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"note: load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} CPU(s); wall times grow "
          "with load.")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        # Airflow logs to stdout; keep only the result line on it.
        real_stdout = os.dup(1)
        os.dup2(2, 1)
        result = _worker()
        os.write(real_stdout, (json.dumps(result) + "\n").encode())
    else:
        main()
