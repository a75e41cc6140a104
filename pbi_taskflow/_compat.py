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


__all__ = ["aget_connection", "base_hook", "call_with_context", "get_connection", "task_exception"]
