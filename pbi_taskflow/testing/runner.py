"""Run a DAG (or one task) in this process with ``dag.test()`` and collect what happened.

This hides the Airflow 3.x quirks of ``dag.test()`` (the internals they need are in
:mod:`pbi_taskflow.testing._compat`): the DAG is serialized into the metadata database first
(bundle sync, a one-DAG ``DagBag`` and ``sync_bag_to_db``), every run gets a unique
logical date, tasks run without an executor, and the outcome is read back from the database as plain
Python values (states, deserialized XComs, captured log lines, asset events).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pbi_taskflow.testing.logcapture import CapturedLine, LogCapture

__all__ = ["DagRunResult", "TaskInstanceInfo", "run_dag", "run_task"]

_NO_VALUE = object()
_last_date_lock = threading.Lock()
_last_date: datetime | None = None


@dataclass(frozen=True)
class TaskInstanceInfo:
    """A task instance after the run, detached from the database.

    :param task_id: task id.
    :param map_index: map index (-1 when not mapped).
    :param state: final state (``"success"``, ``"failed"``, ``"upstream_failed"``, ``"skipped"``...), or None.
    :param try_number: the last try.
    :param start_date: when it started, if it did.
    :param end_date: when it ended, if it did.
    """

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    start_date: datetime | None
    end_date: datetime | None

    @property
    def duration(self) -> float | None:
        """Seconds between start and end, if both are known."""
        if self.start_date is None or self.end_date is None:
            return None
        return (self.end_date - self.start_date).total_seconds()


@dataclass(frozen=True)
class DagRunResult:
    """The outcome of :func:`run_dag` or :func:`run_task`.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param state: the final DAG run state (``"success"`` or ``"failed"``).
    :param logical_date: the run's logical date.
    :param task_instances: every task instance of the run.
    :param xcoms: deserialized XComs keyed by ``(task_id, key, map_index)``.
    :param asset_events: asset events emitted by the run, as dicts with ``uri``, ``name``, ``extra``,
        ``task_id`` and ``map_index``.
    :param lines: captured log lines.
    """

    dag_id: str
    run_id: str
    state: str
    logical_date: datetime | None
    task_instances: tuple[TaskInstanceInfo, ...]
    xcoms: Mapping[tuple[str, str, int], Any]
    asset_events: list[dict[str, Any]]
    lines: LogCapture = field(repr=False)

    @property
    def task_states(self) -> dict[str, str | None]:
        """``{task_id: state}``; a mapped task reports its worst state over all map indexes."""
        states: dict[str, list[str | None]] = {}
        for ti in self.task_instances:
            states.setdefault(ti.task_id, []).append(ti.state)
        return {task_id: _worst(values) for task_id, values in states.items()}

    @property
    def succeeded(self) -> bool:
        """Whether the DAG run ended in success."""
        return self.state == "success"

    def ti(self, task_id: str, map_index: int = -1) -> TaskInstanceInfo:
        """The task instance ``task_id`` (and ``map_index``) of this run.

        :raises KeyError: if the run has no such task instance.
        """
        for ti in self.task_instances:
            if ti.task_id == task_id and ti.map_index == map_index:
                return ti
        known = sorted({(t.task_id, t.map_index) for t in self.task_instances})
        msg = f"no task instance {task_id!r} (map_index={map_index}) in run {self.run_id}; known: {known}"
        raise KeyError(msg)

    def xcom(self, task_id: str, key: str = "return_value", map_index: int | None = -1, default: Any = None) -> Any:
        """The deserialized XCom value pushed by a task.

        :param task_id: the task.
        :param key: the XCom key.
        :param map_index: the map index; ``None`` returns the list of values of every map index in order.
        :param default: returned when the task pushed nothing under ``key``.
        """
        if map_index is None:
            found = sorted((k[2], v) for k, v in self.xcoms.items() if k[0] == task_id and k[1] == key)
            return [v for _, v in found]
        return self.xcoms.get((task_id, key, map_index), default)

    def logs(self, task_id: str | None = None) -> str:
        """The captured log of one task (all tries and map indexes), or of the whole run, as one string.

        The lines are joined with ``\n``: test with ``"text" in result.logs("refresh")``, or take
        ``result.logs("refresh").splitlines()`` for a list of lines.
        """
        return self.lines.text(task_id)

    def __str__(self) -> str:
        states = ", ".join(f"{k}={v}" for k, v in sorted(self.task_states.items()))
        return f"DagRunResult({self.dag_id} {self.run_id}: {self.state}; {states})"


_SEVERITY = ["failed", "upstream_failed", "up_for_retry", "running", "queued", "scheduled", None, "removed",
             "skipped", "success"]


def _worst(values: list[str | None]) -> str | None:
    def rank(state: str | None) -> int:
        return _SEVERITY.index(state) if state in _SEVERITY else 0

    return min(values, key=rank)


def _unique_logical_date() -> datetime:
    """Now, but strictly later than the previous call (run ids derive from the logical date)."""
    global _last_date
    with _last_date_lock:
        now = datetime.now(timezone.utc)
        if _last_date is not None and now <= _last_date:
            now = _last_date + timedelta(milliseconds=1)
        _last_date = now
        return now


def serialize_dag(dag: Any) -> None:
    """Write ``dag`` into the metadata database so ``dag.test()`` can create runs for it."""
    from pbi_taskflow.testing._compat import write_dag

    write_dag(dag)


def _state(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _collect(dag_run: Any, capture: LogCapture) -> DagRunResult:
    from pbi_taskflow.testing._compat import run_models

    TaskInstance, XComModel, AssetEvent, create_session = run_models()
    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
            .all()
        )
        infos = tuple(
            sorted(
                (
                    TaskInstanceInfo(
                        task_id=ti.task_id,
                        map_index=ti.map_index,
                        state=_state(ti.state),
                        try_number=int(ti.try_number or 0),
                        start_date=ti.start_date,
                        end_date=ti.end_date,
                    )
                    for ti in tis
                ),
                key=lambda t: (t.task_id, t.map_index),
            )
        )
        xcoms: dict[tuple[str, str, int], Any] = {}
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id)
            .all()
        )
        for row in rows:
            xcoms[(row.task_id, row.key, row.map_index)] = XComModel.deserialize_value(row)
        events = (
            session.query(AssetEvent)
            .filter(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
            .order_by(AssetEvent.id)
            .all()
        )
        asset_events = [
            {
                "uri": event.uri,
                "name": getattr(event, "name", None),
                "extra": dict(event.extra or {}),
                "task_id": event.source_task_id,
                "map_index": event.source_map_index,
            }
            for event in events
        ]
    return DagRunResult(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        state=_state(dag_run.state) or "none",
        logical_date=dag_run.logical_date,
        task_instances=infos,
        xcoms=xcoms,
        asset_events=asset_events,
        lines=capture,
    )


def run_dag(
    dag: Any,
    *,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    mark_success_pattern: str | None = None,
    on_log: Callable[[CapturedLine], None] | None = None,
) -> DagRunResult:
    """Run every task of ``dag`` once, in this process, and return what happened.

    Needs an isolated, migrated Airflow home (the ``airflow_home`` fixture, or
    :func:`pbi_taskflow.testing.env.configure_airflow_env` plus :func:`~pbi_taskflow.testing.env.migrate_db`).
    Task failures do not raise: check ``result.state`` / ``result.task_states``.

    :param dag: the DAG object (``@dag``-decorated function called, or ``DAG(...)``).
    :param conf: the run's ``dag_run.conf``.
    :param logical_date: the logical date; a unique "now" when omitted, so repeated runs never collide.
    :param mark_success_pattern: regex of task ids to mark successful without running them.
    :param on_log: called with each captured log line as it happens (a live progress display).
    """
    from pbi_taskflow.testing._compat import attributing_tasks
    from pbi_taskflow.testing.env import migrate_db
    from pbi_taskflow.testing.execution_api import prepare_execution_api

    migrate_db()
    prepare_execution_api()
    serialize_dag(dag)
    capture = LogCapture(listener=on_log)
    with attributing_tasks(capture.task), capture.capturing():
        dag_run = dag.test(
            logical_date=logical_date or _unique_logical_date(),
            run_conf=dict(conf) if conf is not None else None,
            mark_success_pattern=mark_success_pattern,
        )
    return _collect(dag_run, capture)


def run_task(
    dag: Any,
    task_id: str,
    *,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    upstream: bool = True,
) -> DagRunResult:
    """Run one task of ``dag`` (after its upstream tasks, so its inputs exist) and nothing downstream.

    :param dag: the DAG object.
    :param task_id: the task to run.
    :param conf: the run's ``dag_run.conf``.
    :param logical_date: the logical date; a unique "now" when omitted.
    :param upstream: run the upstream tasks for real (default); ``False`` marks them successful without
        running them, so XCom inputs resolve to None.
    :raises KeyError: if ``task_id`` is not in the DAG.
    """
    if task_id not in dag.task_dict:
        msg = f"DAG {dag.dag_id!r} has no task {task_id!r}; tasks: {sorted(dag.task_dict)}"
        raise KeyError(msg)
    subset = dag.partial_subset(task_ids=[task_id], include_upstream=True, include_downstream=False)
    pattern = None
    if not upstream:
        others = [re.escape(t) for t in subset.task_dict if t != task_id]
        pattern = "|".join(others) if others else None  # full-matched by dag.test()
    return run_dag(subset, conf=conf, logical_date=logical_date, mark_success_pattern=pattern)
