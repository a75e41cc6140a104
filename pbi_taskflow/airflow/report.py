"""The end of a refresh task: summary line, refresh log, asset events, and the verdict.

The XCom ``return_value`` is the list of :meth:`RefreshResult.to_dict` records. A failed task raises
:class:`~pbi_taskflow.errors.RefreshFailedError` (or :class:`RefreshTimeoutError`) carrying the same
records, with one message naming each failed dataset and its Power BI error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pbi_taskflow.client.durations import format_seconds
from pbi_taskflow.client.models import RefreshResult, RefreshState, RefreshStatus
from pbi_taskflow.errors import RefreshFailedError, RefreshTimeoutError


def _describe(result: RefreshResult) -> str:
    where = f"{result.dataset_name!r} (workspace {result.workspace_name!r}"
    if result.kind == "dataflow":
        where = "dataflow " + where
    if result.refresh_id:
        where += f", refresh {result.refresh_id}"
    where += ")"
    error = ": ".join(p for p in (result.error_code, result.error_message) if p) or "no error text from Power BI"
    return f"{where}: {result.status.value} - {error}"


def failure_message(results: Sequence[RefreshResult], *, timed_out: bool = False, waited: float | None = None) -> str:
    failed = [r for r in results if r.status.is_failure]
    ran = [r for r in results if r.status is not RefreshStatus.SKIPPED]
    unstarted = [r for r in results if r.status is RefreshStatus.SKIPPED and (r.reason or "").startswith("timed out")]
    noun = "item(s)" if any(r.kind == "dataflow" for r in (*ran, *unstarted)) else "dataset(s)"
    at_timeout = f"the task's timeout of {format_seconds(waited)} s" if waited else "the task's timeout"
    if failed or not timed_out:
        head = f"Power BI refresh failed for {len(failed)} of {len(ran)} {noun}"
        if timed_out:
            head += f"; stopped waiting after {at_timeout}"
    else:
        head = f"Power BI refresh stopped at {at_timeout}"
    parts = [_describe(r) for r in failed]
    if unstarted:
        parts.append(f"{len(unstarted)} {noun} never started: " + ", ".join(
            f"{r.dataset_name!r} (workspace {r.workspace_name!r}, {r.reason})" for r in unstarted))
    return head + ": " + "; ".join(parts)


def verdict(results: Sequence[RefreshResult], fail_policy: str) -> bool:
    """Whether the task fails under ``fail_policy`` ("any" or "all")."""
    failed = [r for r in results if r.status.is_failure]
    if not failed:
        return False
    if fail_policy == "all":
        ran = [r for r in results if r.status is not RefreshStatus.SKIPPED]
        return len(failed) == len(ran)
    return True


def report(
    operator: Any,
    context: Mapping[str, Any],
    results: Sequence[RefreshResult],
    *,
    timed_out: bool = False,
    waited: float | None = None,
    started_only: bool = False,
    earlier: Sequence[tuple[int, RefreshResult]] = (),
) -> list[dict[str, Any]]:
    """Log, record and judge the task's results; return the XCom value or raise the failure.

    ``earlier`` holds ``(try, result)`` of refreshes an earlier try of this DAG run completed and this
    try skipped: their asset events are emitted now, when the task succeeds.
    """
    from pbi_taskflow.airflow.lineage import emit_asset_events
    from pbi_taskflow.observability.status_log import summary_table

    log = operator.log
    records = [r.to_dict() for r in results]
    if results:
        log.info("Power BI refresh summary:\n%s", summary_table(results))
    if getattr(operator, "refresh_log_conn_id", None):
        from pbi_taskflow.observability.refresh_log import write_refresh_log

        write_refresh_log(operator.refresh_log_conn_id, results, context, logger=log)
    if started_only and not timed_out and not verdict(results, operator.policy.fail_policy):
        log.info("Started %d refresh(es) without waiting (wait=False).", len(results))
        return records
    if timed_out or verdict(results, operator.policy.fail_policy):
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="return_value", value=records)
        message = failure_message(results, timed_out=timed_out, waited=waited)
        if timed_out:
            raise RefreshTimeoutError(message, results=records)
        raise RefreshFailedError(message, results=records)
    emitted = emit_asset_events(context, results, earlier=earlier)
    if emitted:
        log.info("Recorded %d Power BI asset event(s).", emitted)
    return records


def _not_waited(client: Any, handle: Any) -> RefreshResult:
    """The result of a refresh a ``wait=False`` task leaves running: ``NotStarted`` for one it started (or cannot
    tell from another caller's, its note says why), ``Skipped`` for another caller's it attached to."""
    result: RefreshResult
    if handle.attached and not handle.note:
        result = client.result_from(handle, RefreshState(status=RefreshStatus.SKIPPED), reason=(
            f"another caller's refresh {handle.refresh_id} is running (if_running='attach'); not waited for with "
            "wait=False"))
    else:
        result = client.result_from(handle, RefreshState(status=RefreshStatus.NOT_STARTED))
    return result


def finish(
    op: Any, context: Any, run: Any, ledger: Any, *, timed_out: bool = False, started_only: bool = False,
    waiter: Any = None,
) -> list[dict[str, Any]]:
    """End refresh task ``op``'s run: time out what still runs (after one last look), record what a retry needs,
    then :func:`report`.

    :param run: the task's :class:`~pbi_taskflow.engine.run.RefreshRun`.
    :param ledger: where the run is recorded between tries (:class:`~pbi_taskflow.airflow.ledger.Ledger`).
    :param timed_out: the task's ``timeout`` passed.
    :param started_only: ``wait=False``: the refreshes were started, not waited for.
    :param waiter: the waiter, for the last status read at the deadline.
    """
    from pbi_taskflow.engine.run import RefreshRun

    if timed_out and waiter is not None:
        op.log.info("The task's timeout of %s s passed: reading the status of every unfinished refresh once "
                    "more.", format_seconds(op.policy.timeout or 0.0))
        waiter.final_check()  # only a refresh still running at the deadline is TimedOut
        timed_out = not (run.done or (started_only and not (run.pending or run.probes or run.blockers)))
    if timed_out:
        waited = op.policy.timeout or 0.0
        client = op._client()
        running = run.time_out(client.result_from, waited)
        if op.policy.cancel_on_timeout and running:
            op._run_state = RefreshRun(active={h.refresh_id: h.to_dict() for h in running})
            op._cancel(op._run_state)
    if started_only:
        client = op._client()
        for handle in run.handles():
            run.results.append(_not_waited(client, handle).to_dict())
        run.active.clear()
    op._run_state = None
    results = run.final_results()
    if timed_out or verdict(results, op.policy.fail_policy):
        # the task fails: a retry in this DAG run refreshes only what did not complete
        ledger.save(RefreshRun(completed=run.carried_over(op._attempt(context)), max_tries=op._max_tries(context),
                               profile_id=run.profile_id, **run.started_by_tries()))
    else:
        ledger.clear()
    earlier = run.reused_results()
    op._last_results = [*results, *(r for _, r in earlier)]  # OpenLineage outputs include carried-over ones
    return report(op, context, results, timed_out=timed_out, waited=op.policy.timeout, started_only=started_only,
                  earlier=earlier)


__all__ = ["failure_message", "finish", "report", "verdict"]
