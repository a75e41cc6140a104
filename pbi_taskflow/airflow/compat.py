"""Airflow names that moved between 3.0 and later 3.x releases, looked up where this Airflow has them.

Airflow 3.1 gathered the task-facing API under ``airflow.sdk``: ``BaseHook``, the task exceptions,
``determine_kwargs`` and ``context_merge``, and async connection lookup. Airflow 3.0 has them in
``airflow.hooks.base``, ``airflow.exceptions`` and ``airflow.utils``. Each helper imports lazily, so
importing this module costs nothing at DAG-parse time.
"""

from __future__ import annotations

import asyncio
from typing import Any


def base_hook() -> Any:
    """Airflow's ``BaseHook`` class."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0
        from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]
    return BaseHook


def task_exception(name: str) -> Any:
    """The task exception class ``name`` (``AirflowFailException``, ``AirflowSkipException``, ``AirflowTaskTimeout``)."""
    import airflow.sdk.exceptions as sdk_exceptions

    found = getattr(sdk_exceptions, name, None)
    if found is None:  # Airflow 3.0
        import airflow.exceptions as core_exceptions

        found = getattr(core_exceptions, name)
    return found


def get_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``, through Airflow's secrets backends."""
    return base_hook().get_connection(conn_id)


async def aget_connection(conn_id: str) -> Any:
    """Like :func:`get_connection`, without blocking the event loop."""
    hook = base_hook()
    getter = getattr(hook, "aget_connection", None)
    if getter is not None:
        return await getter(conn_id)
    return await asyncio.to_thread(hook.get_connection, conn_id)  # Airflow 3.0


def call_with_context(func: Any, args: Any, kwargs: Any, context: Any) -> Any:
    """Call ``func`` as a TaskFlow task: ``kwargs`` merged into ``context``, the arguments it asks for passed."""
    try:
        from airflow.sdk.bases.decorator import determine_kwargs
        from airflow.sdk.definitions.context import context_merge
    except ImportError:  # Airflow 3.0
        from airflow.utils.context import context_merge  # type: ignore[attr-defined,no-redef]
        from airflow.utils.operator_helpers import determine_kwargs  # type: ignore[attr-defined,no-redef]

    context_merge(context, kwargs)
    return func(*args, **determine_kwargs(func, args, context))


def task_instance_state(ti: Any, timeout: float = 3.0) -> tuple[bool, str | None]:
    """``(known, state)`` of the task instance ``ti`` as Airflow's database has it now.

    Asked through the Task SDK (``get_task_states``) in a helper thread with a bound, because this
    runs from the SIGTERM handler: if the interrupted code holds the supervisor channel, the answer
    never comes and ``(False, None)`` is returned. Airflow versions without the call also give
    ``(False, None)``.
    """
    import threading

    getter = getattr(ti, "get_task_states", None)
    dag_id, run_id, task_id = (getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id"))
    if getter is None or not (dag_id and run_id and task_id):
        return False, None
    map_index = getattr(ti, "map_index", -1)
    map_index = map_index if isinstance(map_index, int) else -1
    answer: dict[str, Any] = {}

    def ask() -> None:
        try:
            states = getter(dag_id=dag_id, task_ids=[task_id], run_ids=[run_id],
                            map_index=map_index if map_index >= 0 else None)
            by_task = dict(states.get(run_id) or {})
            name = task_id if map_index < 0 else f"{task_id}_{map_index}"
            if name in by_task:
                value = by_task[name]
                answer["state"] = None if value is None else str(getattr(value, "value", value))
        except Exception:  # noqa: BLE001 - unknown is the safe answer: nothing is cancelled
            return

    thread = threading.Thread(target=ask, name="pbi-taskflow-ti-state", daemon=True)
    thread.start()
    thread.join(timeout)
    if "state" not in answer:
        return False, None
    return True, answer["state"]


__all__ = [
    "aget_connection",
    "base_hook",
    "call_with_context",
    "get_connection",
    "task_exception",
    "task_instance_state",
]
