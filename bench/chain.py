"""Lineage-ordered refresh benchmark: one task refreshing a three-level chain.

Four dataflows feed six models, which feed two composite models, across two workspaces. The task
returns the eight models with ``upstream="refresh"``: the lineage graph is read (one
``datasets/upstreamDataflows`` call per workspace), the dataflows are added, and the chain is refreshed
depth by depth with the same planner and waiter the operator uses, in real time against the emulator
(``poll_interval`` 1 s), with and without refresh history. Goal: done within the sum of the longest
refresh of each level plus 3 s, with one lineage read per workspace holding selected models. Median of a few runs.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

RUNS = 3
#: refresh seconds of each item, per level: dataflows, models, composite models
DATAFLOWS = (1.0, 1.5, 2.0, 2.5)
MODELS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
COMPOSITES = (1.0, 2.0)
SLACK = 3.0


def _seed(emu: Any, history: bool) -> list[str]:
    """The chain: dataflow i % 4 feeds model i; each composite reads three models; returns the model names.

    :param history: give every item yesterday's refresh of the same duration (a chain refreshed daily).
    """
    for ws in ("Ingest", "Reporting"):
        emu.add_workspace(ws)
    flows = [f"Flow {i}" for i in range(len(DATAFLOWS))]
    for name, seconds in zip(flows, DATAFLOWS, strict=True):
        emu.add_dataflow("Ingest", name, duration=seconds)
        if history:
            emu.add_dataflow_history(name, ago=86_400.0, duration=seconds)
    models = [f"Model {i}" for i in range(len(MODELS))]
    for i, (name, seconds) in enumerate(zip(models, MODELS, strict=True)):
        emu.add_dataset("Reporting", name, duration=seconds)
        emu.link_dataset("Reporting", name, [flows[i % len(flows)]])
        if history:
            emu.add_history(name, duration=seconds, ago=86_400.0)
    composites = [f"Composite {i}" for i in range(len(COMPOSITES))]
    for i, (name, seconds) in enumerate(zip(composites, COMPOSITES, strict=True)):
        emu.add_dataset("Reporting", name, duration=seconds)
        emu.link_model(name, models[3 * i: 3 * i + 3])
        if history:
            emu.add_history(name, duration=seconds, ago=86_400.0)
    return models + composites


def _client(emu: Any) -> Any:
    from pbi_taskflow.client.settings import ConnectionSettings

    return ConnectionSettings.from_mapping(emu.settings()).build_client()


def _run_once(history: bool) -> dict[str, Any]:
    from pbi_taskflow.client import retry
    from pbi_taskflow.client.models import Refresh, RefreshStatus
    from pbi_taskflow.emulator import Emulator
    from pbi_taskflow.engine.lineage import read_graph
    from pbi_taskflow.engine.policy import RefreshPolicy
    from pbi_taskflow.engine.run import RefreshRun
    from pbi_taskflow.engine.targets import merge_targets
    from pbi_taskflow.engine.waiter import Waiter

    logger = logging.getLogger("bench.chain")
    logger.setLevel(logging.ERROR)
    retry.set_testing(True)
    try:
        with Emulator(time_scale=1.0) as emu:
            names = _seed(emu, history)
            client = _client(emu)
            policy = dataclasses.replace(RefreshPolicy(max_concurrency=16, timeout=None), poll_min=1.0)
            started = time.perf_counter()
            targets = merge_targets(client.resolve(Refresh(n, "Reporting")) for n in names)
            graph, targets = read_graph(client, targets, add_upstream=True)
            run = RefreshRun()
            keys = [t.dataset_id.lower() for t in targets]
            run.after = {k: list(graph.after(k)) for k in keys if graph.after(k)}
            run.depths = {k: v for k, v in graph.depths().items() if k in keys}
            run.plan(client, targets, policy, time.time())
            waiter = Waiter(run, client, policy, logger)
            waiter.start()
            waiter.wait()
            wall = time.perf_counter() - started
            results = run.final_results()
            reads: dict[str, int] = {}
            for request in emu.requests:
                if request.endpoint == "dataset_upstream_dataflows":
                    reads[request.path.split("/groups/")[1].split("/")[0]] = reads.get(
                        request.path.split("/groups/")[1].split("/")[0], 0) + 1
    finally:
        retry.set_testing(False)
    return {
        "wall": wall,
        "items": len(results),
        "completed": sum(r.status is RefreshStatus.COMPLETED for r in results),
        "levels": len(set(run.depths.values())),
        "lineage_reads": max(reads.values(), default=0),
        "workspaces_read": len(reads),
        "status_calls": waiter.status_calls,
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(lines)


def chain_rows() -> list[tuple[str, ...]]:
    return [_row(history) for history in (True, False)]


def _row(history: bool) -> tuple[str, ...]:
    runs = [_run_once(history) for _ in range(RUNS)]
    bound = max(DATAFLOWS) + max(MODELS) + max(COMPOSITES)
    wall = statistics.median(r["wall"] for r in runs)
    reads = max(r["lineage_reads"] for r in runs)
    met = wall <= bound + SLACK and reads == 1 and all(r["completed"] == r["items"] for r in runs)
    goal = "met" if met else "MISSED"
    return (
        f"{len(DATAFLOWS)} dataflows -> {len(MODELS)} models -> {len(COMPOSITES)} composites",
        "yes" if history else "no",
        f"{runs[0]['levels']}",
        f"{runs[0]['completed']}/{runs[0]['items']}",
        f"{wall:.2f}",
        f"{bound:g}",
        f"{wall - bound:+.2f}",
        f"{reads} x {runs[0]['workspaces_read']}",
        f"{statistics.median(r['status_calls'] for r in runs):g}",
        goal,
    )


def main(emit: Callable[[str], None] = print) -> None:
    emit(f"One task, upstream='refresh', a three-level chain over two workspaces; real time, poll_interval 1 s; "
         f"median of {RUNS}.")
    emit(_table(("chain", "history", "levels", "completed", "wall s", "sum of longest per level", "vs sum", "lineage reads per ws",
                 "status calls", "goal"), chain_rows()))
    emit(f"Goal, with and without history (yesterday's refreshes of the same length): done within the sum of the "
         f"longest refresh of each level plus {SLACK:g} s, with one lineage read (datasets/upstreamDataflows) per "
         "workspace holding selected models.")


if __name__ == "__main__":
    main()
