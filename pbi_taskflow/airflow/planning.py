"""Planning a refresh task's run: what was selected, resolved to ids, ordered by lineage, checked, and read once.

:func:`plan_run` turns the task's selection into a :class:`~pbi_taskflow.engine.run.RefreshRun`: names become
ids (the workspace allow-list first), a lineage-ordered task (``upstream="order"`` or ``"refresh"``) reads the
lineage graph (adding the upstream dataflows with ``"refresh"``) and records what each item waits for, pre-flight
checks run when asked, and each item's history is read once to apply ``if_running`` and ``min_interval``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pbi_taskflow.errors import ConfigurationError

if TYPE_CHECKING:
    from pbi_taskflow.client.models import Target
    from pbi_taskflow.engine.run import RefreshRun

#: ``upstream`` values: ``ignore`` the lineage (default); ``order`` the selection by it; also ``refresh`` the
#: dataflows the selection reads, upstream first.
UPSTREAM_MODES = ("ignore", "order", "refresh")


def check_upstream(value: Any) -> str:
    """The ``upstream`` argument checked before any HTTP call."""
    if value not in UPSTREAM_MODES:
        msg = (f"Invalid upstream {value!r}: expected 'ignore' (refresh the selection in no particular order), "
               "'order' (refresh the selection in lineage order) or 'refresh' (also refresh the dataflows it reads, "
               "upstream first).")
        raise ConfigurationError(msg)
    return str(value)


def plan_run(op: Any, context: Mapping[str, Any], completed: list[dict[str, Any]],
             started: Mapping[str, Any] | None = None) -> RefreshRun | None:
    """The run of refresh task ``op`` (a ``PowerBIRefreshOperator``), or None when nothing was selected.

    :param completed: refreshes earlier tries of this DAG run completed (their items are not refreshed again).
    :param started: the refreshes earlier tries of this DAG run started (``RefreshRun.started_by_tries``): one still
        running is followed, one that completed is reused.
    """
    from pbi_taskflow.engine.run import RefreshRun
    from pbi_taskflow.engine.selection import normalize
    from pbi_taskflow.engine.targets import merge_targets

    selected = normalize(op._selection(context), default_workspace=op.workspace)
    if not selected:
        return None
    client = op._client()
    targets = merge_targets(client.resolve(r, op.workspace, op.options) for r in selected)
    now = op.clock()
    run = RefreshRun(deadline=now + op.policy.timeout if op.policy.timeout else None, completed=list(completed),
                     profile_id=client.profile_id, attempt=op._attempt(context), **dict(started or {}))
    if op.upstream != "ignore":
        targets = _order(op, client, run, targets)
    todo = run.skip_completed(targets)
    if len(todo) < len(targets):
        op.log.info("%d item(s) completed in an earlier try of this DAG run; refreshing only the other %d.",
                    len(targets) - len(todo), len(todo))
    datasets = [t for t in todo if not t.is_dataflow]
    if op.preflight and datasets:
        preflight(op.log, client, datasets)
    try:
        run.plan(client, todo, op.policy, now)
    finally:
        run.absorb(client)
    if not op.wait:
        _skip_blocked(run)
    return run


def _order(op: Any, client: Any, run: RefreshRun, targets: list[Target]) -> list[Target]:
    """Read the lineage graph, record what each item waits for and its depth; return the targets to refresh."""
    from pbi_taskflow.engine.lineage import read_graph

    graph, targets = read_graph(client, targets, add_upstream=op.upstream == "refresh")
    keys = [t.dataset_id.lower() for t in targets]
    run.after = {key: list(graph.after(key)) for key in keys if graph.after(key)}
    depths = graph.depths()
    run.depths = {key: depths[key] for key in keys if key in depths}
    op.log.info("Refreshing in lineage order (upstream=%r), %d level(s):", op.upstream, len(set(run.depths.values())))
    for line in graph.render():
        op.log.info("  %s", line)
    return targets


def _skip_blocked(run: RefreshRun) -> None:
    from pbi_taskflow.engine.targets import skipped, target_from_dict

    for key, blocked in list(run.blockers.items()):
        target = target_from_dict(blocked["target"])
        run.results.append(skipped(target, "already refreshing and wait=False").to_dict())
        del run.blockers[key]


def preflight(log: Any, client: Any, targets: list[Target]) -> None:
    """Check the targets' data sources and gateways; raise before anything starts when one cannot refresh."""
    from pbi_taskflow.engine.preflight import FAIL, OK, check_targets, require_ready

    checks = check_targets(client, targets)
    for check in checks:
        for source in check.checks:
            level = {OK: log.info, FAIL: log.error}.get(source.verdict, log.warning)
            level("Pre-flight: %s: %s", check.name, source.line())
    require_ready(checks)


def empty(policy: Any, log: Any) -> list[Any]:
    """What a task that selected nothing does (``on_empty``): skip, fail, or succeed with no results."""
    from pbi_taskflow.airflow.compat import task_exception

    message = "The task selected no Power BI dataset to refresh."
    if policy.on_empty == "skip":
        raise task_exception("AirflowSkipException")(message + " Skipping it (on_empty='skip').")
    if policy.on_empty == "fail":
        raise task_exception("AirflowFailException")(message + " Failing it (on_empty='fail').")
    log.info("%s Nothing to do (on_empty='succeed').", message)
    return []


__all__ = ["UPSTREAM_MODES", "check_upstream", "empty", "plan_run", "preflight"]
