"""``@powerbi_refresh`` / ``@task.powerbi_refresh``: the decorated function's return value selects the datasets.

Only Airflow's SDK bases and pbi_taskflow's value types load here: DAG files import this module at
parse time, so the client (requests, msal), httpx and the trigger load when the task runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from pbi_taskflow.airflow.operator import PowerBIRefreshOperator

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import Task, TaskDecorator

P = ParamSpec("P")
R = TypeVar("R")


class _PowerBIRefreshDecoratedOperator(DecoratedOperator, PowerBIRefreshOperator):  # type: ignore[misc]
    """Runs the user function, then refreshes what it returned (see :class:`PowerBIRefreshOperator`)."""

    custom_operator_name = "@task.powerbi_refresh"
    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, "workspace", "conn_id", "profile_id")
    template_fields_renderers = DecoratedOperator.template_fields_renderers
    shallow_copy_attrs: Sequence[str] = (
        *DecoratedOperator.shallow_copy_attrs,
        *PowerBIRefreshOperator.shallow_copy_attrs,
    )

    def __init__(self, *, python_callable: Callable[..., Any], op_args: Any = None, op_kwargs: Any = None,
                 **kwargs: Any) -> None:
        kwargs.pop("refreshes", None)
        super().__init__(python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs)

    def _selection(self, context: Mapping[str, Any]) -> Any:
        from pbi_taskflow.airflow.compat import call_with_context

        return call_with_context(self.python_callable, self.op_args, self.op_kwargs, context)

    def execute(self, context: Any) -> Any:
        # DecoratedOperator.execute would call PowerBIRefreshOperator.execute through super(); call it directly.
        return PowerBIRefreshOperator.execute(self, context)


def powerbi_refresh_task(
    python_callable: Callable[..., Any] | None = None, multiple_outputs: bool | None = None, **kwargs: Any
) -> TaskDecorator:
    """The task decorator registered as ``@task.powerbi_refresh``.

    ``multiple_outputs`` is forced off (unless asked for): the return value XCom is always the list of
    results, even when the function is annotated ``-> dict``.

    :meta private:
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=bool(multiple_outputs),
        decorated_operator_class=_PowerBIRefreshDecoratedOperator,
        **kwargs,
    )


@overload
def powerbi_refresh(python_callable: Callable[P, R]) -> Task[P, R]: ...


@overload
def powerbi_refresh(
    *,
    conn_id: str | None = None,
    workspace: str | None = None,
    wait: bool = True,
    deferrable: bool | None = None,
    poll_interval: float | dt.timedelta | None = None,
    max_poll_interval: float | dt.timedelta | None = None,
    timeout: float | dt.timedelta | None = ...,
    type: str | None = None,
    commit_mode: str | None = None,
    max_parallelism: int | None = None,
    retry_count: int | None = None,
    apply_refresh_policy: bool | None = None,
    effective_date: dt.date | str | None = None,
    powerbi_timeout: str | int | dt.timedelta | None = None,
    max_concurrency: int | None = None,
    if_running: Literal["wait", "attach", "skip", "fail"] = "wait",
    min_interval: float | dt.timedelta | None = None,
    on_empty: Literal["skip", "succeed", "fail"] = "skip",
    fail_policy: Literal["any", "all"] = "any",
    cancel_on_kill: bool = True,
    cancel_on_timeout: bool = True,
    refresh_log_conn_id: str | None = None,
    profile_id: str | None = None,
    preflight: bool = False,
    upstream: Literal["ignore", "order", "refresh"] = "ignore",
    task_id: str | None = None,
    **task_kwargs: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def powerbi_refresh(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """Turn a function into a task that refreshes the Power BI datasets it returns.

    Usable bare (``@powerbi_refresh``) or with arguments (``@powerbi_refresh(workspace="Sales")``);
    the same decorator as ``@task.powerbi_refresh``. Accepts every normal task argument (retries,
    pool, queue, ...) and the options of :class:`~pbi_taskflow.airflow.operator.PowerBIRefreshOperator`.

    The function returns what to refresh: None or an empty collection (nothing, see ``on_empty``), a
    dataset name or id, a :class:`~pbi_taskflow.Refresh`, a mapping ``{dataset: [table, ...] or None}``,
    or any list mixing these.
    """
    return powerbi_refresh_task(python_callable, **kwargs)


__all__ = ["powerbi_refresh", "powerbi_refresh_task"]
