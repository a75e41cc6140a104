"""The refresh operator behind ``@task.powerbi_refresh``: select, resolve, start, wait or defer, report.

Module-level imports stay light (Airflow SDK bases and pbi_taskflow's value types): DAG files import
this at parse time. The client, the waiter and the trigger load inside :meth:`execute`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator

from pbi_taskflow.airflow.config import airflow_conf, number_option, option
from pbi_taskflow.airflow.failfast import failing_fast
from pbi_taskflow.airflow.lineage import ALIAS_NAME
from pbi_taskflow.airflow.links import PowerBIDatasetLink, PowerBIWorkspaceLink
from pbi_taskflow.client.durations import APPEARANCE_GRACE, to_seconds
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.errors import ConfigurationError, RefreshFailedError, RefreshTimeoutError

if TYPE_CHECKING:
    from pbi_taskflow.airflow.deferral import Deferral
    from pbi_taskflow.client.models import RefreshOptions, RefreshResult
    from pbi_taskflow.engine.run import RefreshRun

#: task_state_store key holding the task's refreshes while they run (read back by a retry).
STATE_KEY = "pbi_taskflow_run"
#: XCom key with the handles of the refreshes started, pushed right after starting them.
HANDLES_XCOM = "pbi_handles"
#: Default of ``timeout``: longer than Power BI's own 5 h limit on Premium.
DEFAULT_TIMEOUT = dt.timedelta(hours=6)

_UNSET: Any = object()


class PowerBIRefreshOperator(BaseOperator):  # type: ignore[misc]
    """Refresh Power BI semantic models and wait for them.

    :param refreshes: what to refresh: a dataset name or id, a :class:`~pbi_taskflow.Refresh`, a
        :class:`~pbi_taskflow.Dataflow`, a mapping ``{dataset: [table, ...] or None}``, or a list mixing these
        (templated).
    :param conn_id: Airflow connection of type ``pbi_taskflow`` (default ``powerbi_default``).
    :param workspace: default workspace (name or id) for datasets that do not name one (templated).
    :param wait: wait for the refreshes to finish (False: start them and return).
    :param deferrable: wait in the triggerer instead of the worker (default ``[operators] default_deferrable``).
    :param poll_interval: shortest delay between two status calls of one refresh (seconds or timedelta).
    :param max_poll_interval: longest delay between two status calls of one refresh.
    :param timeout: how long to wait for the refreshes (default 6 h; None: no limit). Separate from
        HTTP timeouts and from Airflow's ``execution_timeout``.
    :param type: enhanced refresh type (Full, ClearValues, Calculate, DataOnly, Automatic, Defragment).
    :param commit_mode: ``Transactional`` or ``PartialBatch``.
    :param max_parallelism: Power BI-side parallelism.
    :param retry_count: Power BI-side retries.
    :param apply_refresh_policy: apply the incremental refresh policy.
    :param effective_date: the incremental policy's "today".
    :param powerbi_timeout: Power BI-side timeout per attempt ('hh:mm:ss', seconds or timedelta).
    :param max_concurrency: refreshes running at once (default ``[pbi_taskflow] max_concurrency``, 8).
    :param if_running: a dataset already refreshing: ``wait`` then refresh, ``attach``, ``skip`` or ``fail``.
    :param min_interval: skip datasets refreshed successfully less than this long ago.
    :param on_empty: nothing selected: ``skip`` the task, ``succeed`` or ``fail``.
    :param fail_policy: fail when ``any`` dataset fails, or only when ``all`` do.
    :param cancel_on_kill: cancel the refreshes this task started when the task is killed.
    :param cancel_on_timeout: cancel them when ``timeout`` or ``execution_timeout`` passes.
    :param refresh_log_conn_id: connection of the optional SQL refresh log.
    :param profile_id: the service principal profile to act as (``X-PowerBI-Profile-Id``), overriding the
        connection's ``profile_id`` extra (templated).
    :param preflight: before starting any refresh, check each dataset's data sources, gateway bindings and gateway
        status, and fail without starting anything when one cannot refresh (see :mod:`pbi_taskflow.engine.preflight`).
    :param upstream: ``ignore`` the lineage (default); ``order``: refresh the selection in lineage order, each item
        after everything selected that it reads; ``refresh``: also refresh the dataflows the selection reads
        (across the workspaces the connection may use), upstream first. An item whose upstream fails is not
        refreshed (``Skipped``, naming it); a cycle or unreadable lineage fails the task before any refresh.
    """

    template_fields: Sequence[str] = ("refreshes", "workspace", "conn_id", "profile_id")
    #: Run-time objects (HTTP client, kill flag) are shared, not deep-copied, when Airflow copies the task.
    shallow_copy_attrs: Sequence[str] = ("_client_obj", "_killed", "_run_state", "_context")
    ui_color = "#F2C811"
    #: Buttons on the task instance page that open the refreshed model and its workspace in Power BI.
    operator_extra_links = (PowerBIDatasetLink(), PowerBIWorkspaceLink())

    #: Clock and sleep of the worker-side wait (replaced in benchmarks by the emulator's clock).
    clock: Callable[[], float] = staticmethod(time.time)
    sleep: Callable[[float], None] | None = None

    def __init__(
        self,
        *,
        refreshes: Any = None,
        conn_id: str | None = None,
        workspace: str | None = None,
        wait: bool = True,
        deferrable: bool | None = None,
        poll_interval: float | dt.timedelta | None = None,
        max_poll_interval: float | dt.timedelta | None = None,
        timeout: float | dt.timedelta | None = _UNSET,
        type: str | None = None,
        commit_mode: str | None = None,
        max_parallelism: int | None = None,
        retry_count: int | None = None,
        apply_refresh_policy: bool | None = None,
        effective_date: dt.date | str | None = None,
        powerbi_timeout: str | int | dt.timedelta | None = None,
        max_concurrency: int | None = None,
        if_running: str = "wait",
        min_interval: float | dt.timedelta | None = None,
        on_empty: str = "skip",
        fail_policy: str = "any",
        cancel_on_kill: bool = True,
        cancel_on_timeout: bool = True,
        refresh_log_conn_id: str | None = None,
        profile_id: str | None = None,
        preflight: bool = False,
        upstream: str = "ignore",
        **kwargs: Any,
    ) -> None:
        outlets = list(kwargs.pop("outlets", None) or [])
        alias = AssetAlias(ALIAS_NAME)
        if alias not in outlets:
            outlets.append(alias)
        super().__init__(outlets=outlets, **kwargs)
        self.refreshes = refreshes
        if conn_id is not None and (not isinstance(conn_id, str) or not conn_id.strip()):
            msg = f"Invalid conn_id {conn_id!r}: expected the id of an Airflow connection, e.g. 'powerbi_default'."
            raise ConfigurationError(msg)
        self.conn_id = conn_id or option("default_conn_id", "powerbi_default")
        self.workspace = workspace
        if not isinstance(wait, bool):
            msg = f"Invalid wait {wait!r}: expected True or False."
            raise ConfigurationError(msg)
        self.wait = wait
        if deferrable is None:
            deferrable = airflow_conf().getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = bool(deferrable)
        option_values: dict[str, Any] = {
            "type": type,
            "commit_mode": commit_mode,
            "max_parallelism": max_parallelism,
            "retry_count": retry_count,
            "apply_refresh_policy": apply_refresh_policy,
            "effective_date": effective_date,
            "timeout": powerbi_timeout,
        }
        self.options: RefreshOptions | None = None
        if any(v is not None for v in option_values.values()):
            from pbi_taskflow.client.models import RefreshOptions  # only when options are given: light DAG parsing

            self.options = RefreshOptions(**option_values)
        wait_timeout = DEFAULT_TIMEOUT if timeout is _UNSET else timeout
        poll_min = to_seconds(poll_interval, "poll_interval") or number_option("poll_min_interval", "1")
        poll_max = to_seconds(max_poll_interval, "max_poll_interval")
        if poll_max is None:  # the configured default never undercuts an explicit poll_interval
            poll_max = max(poll_min, number_option("poll_max_interval", "600"))
        self.policy = RefreshPolicy(
            if_running=if_running,
            min_interval=to_seconds(min_interval, "min_interval"),
            on_empty=on_empty,
            fail_policy=fail_policy,
            max_concurrency=max_concurrency if max_concurrency is not None else int(number_option("max_concurrency", "8", integer=True)),
            poll_min=poll_min,
            poll_max=poll_max,
            timeout=to_seconds(wait_timeout, "timeout"),
            cancel_on_kill=cancel_on_kill,
            cancel_on_timeout=cancel_on_timeout,
            appearance_grace=number_option("appearance_grace", str(APPEARANCE_GRACE)),
        )
        self.refresh_log_conn_id = refresh_log_conn_id
        self.profile_id = _profile_arg(profile_id)
        if not isinstance(preflight, bool):
            msg = f"Invalid preflight {preflight!r}: expected True (check data sources and gateways first) or False."
            raise ConfigurationError(msg)
        self.preflight = preflight
        from pbi_taskflow.airflow.planning import check_upstream

        self.upstream = check_upstream(upstream)
        #: the profile the client acts as when set: a resumed run's (else the task's ``profile_id``, else the
        #: connection's)
        self._acting_as: Any = _UNSET
        self._client_obj: Any = None
        self._run_state: RefreshRun | None = None
        self._killed: threading.Event | None = None
        self._context: Mapping[str, Any] | None = None
        self._last_results: list[RefreshResult] = []

    # --- hooks for the decorator ----------------------------------------------------------------

    def _selection(self, context: Mapping[str, Any]) -> Any:
        """What to refresh; the decorated operator returns the user function's value instead."""
        return self.refreshes

    # --- helpers ------------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._client_obj is None:
            from pbi_taskflow.airflow.hook import PowerBIHook

            acting_as = self.profile_id if self._acting_as is _UNSET else self._acting_as
            override = {} if self._acting_as is _UNSET and acting_as is None else {"profile_id": _profile_arg(acting_as)}
            self._client_obj = PowerBIHook(self.conn_id, **override).get_client()
        return self._client_obj

    def _act_as_recorded(self, run: RefreshRun) -> None:
        """Follow a recorded run's refreshes as the profile that started them, whatever the task acts as now."""
        current = self._client().profile_id
        if run.profile_id == current:
            return
        self.log.warning(
            "The refreshes recorded by an earlier try were started as %s, but the task now acts as %s: following them "
            "as the profile that started them.", run.profile_id or "the service principal itself",
            current or "the service principal itself",
        )
        self._client_obj.close()
        self._acting_as, self._client_obj = run.profile_id, None

    def _kill_event(self) -> threading.Event:
        if self._killed is None:
            self._killed = threading.Event()
        return self._killed

    def _sleep(self, seconds: float) -> None:
        if self.sleep is not None:
            self.sleep(seconds)
        elif self._kill_event().wait(max(0.0, seconds)):
            msg = "The task was killed while waiting for Power BI refreshes."
            raise RuntimeError(msg)

    def _attempt(self, context: Mapping[str, Any]) -> int:
        ti = context.get("ti")
        return int(getattr(ti, "try_number", 1) or 1)

    def _max_tries(self, context: Mapping[str, Any]) -> int | None:
        value = getattr(context.get("ti"), "max_tries", None)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    # --- execution -----------------------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        with failing_fast():
            return self._execute(context)

    def _execute(self, context: Any) -> Any:
        from pbi_taskflow.airflow.ledger import Ledger

        self._context = context
        max_tries = self._max_tries(context)
        ledger = Ledger(context, STATE_KEY, self.log, max_tries=max_tries)
        run = ledger.load()
        cleared = run is not None and run.cleared_since(max_tries)
        if run is not None and run.resumable and not cleared:
            self._act_as_recorded(run)
            self.log.info(
                "Resuming the refreshes recorded by an earlier try: %d running, %d not started, %d finished.",
                len(run.active) + len(run.blockers) + len(run.probes), len(run.pending), len(run.results),
            )
            run.restart_deadline(self.clock(), self.policy.timeout)
        else:
            same_profile = run is not None and run.profile_id == self._client().profile_id
            completed = run.reusable(max_tries) if run is not None and same_profile else []
            if run is not None and cleared and run.resumable:
                self.log.info(
                    "The task was cleared while an earlier try was still refreshing: every selected dataset is "
                    "refreshed again (a refresh that try started and that still runs is waited for first)."
                )
            elif run is not None and run.completed and not completed:
                self.log.info(
                    "The task was cleared after an earlier try of this DAG run: the %d refresh(es) that try completed "
                    "are not reused, every selected dataset is refreshed again.", len(run.completed),
                )
            # the refreshes earlier tries of this DAG run started: followed or reused, never started again
            started = run.started_by_tries() if run is not None and same_profile and not cleared else None
            run = self._plan(context, completed, started)
            if run is None:
                return self._empty()
            ledger.save(run)
        return self._drive(context, run, ledger)

    def _plan(self, context: Mapping[str, Any], completed: list[dict[str, Any]], started: Any = None
              ) -> RefreshRun | None:
        from pbi_taskflow.airflow.planning import plan_run

        return plan_run(self, context, completed, started)

    def _empty(self) -> list[Any]:
        from pbi_taskflow.airflow.planning import empty

        return empty(self.policy, self.log)

    def _drive(self, context: Any, run: RefreshRun, ledger: Any) -> Any:
        from pbi_taskflow.airflow.deferral import Deferral

        deferral = Deferral.from_config() if self.deferrable else None
        self._run_state = run
        waiter = self._waiter(context, run, ledger)
        waiter.start()
        self._push_handles(context, run)
        if not self.wait:
            finished = True
            if run.pending or run.probes or run.blockers:
                if run.blockers:
                    self.log.info("%d item(s) wait for another caller's refresh to end (if_running='wait'); starting "
                                  "them once it has.", len(run.blockers))
                if run.pending or run.probes:
                    self.log.info("%d dataset(s) wait for a free slot (max_concurrency=%d); starting them as slots "
                                  "free up.", len(run.pending) + len(run.probes), self.policy.max_concurrency)
                finished = self._wait(run, ledger, waiter, until_started=True)
                self._push_handles(context, run)
            return self._finish(context, run, ledger, started_only=True, timed_out=not finished, waiter=waiter)
        if deferral is not None and not run.done and not self._waited_in_worker(run, ledger, waiter, deferral):
            self._defer(run, deferral)
        finished = self._wait(run, ledger, waiter)
        return self._finish(context, run, ledger, timed_out=not finished, waiter=waiter)

    def _waiter(self, context: Any, run: RefreshRun, ledger: Any) -> Any:
        from pbi_taskflow.engine.waiter import Waiter

        client = self._client()
        client.appearance_grace = self.policy.appearance_grace
        return Waiter(
            run, client, self.policy, self.log,
            persist=lambda: ledger.save(run), persist_before_send=lambda: ledger.save(run, before_send=True),
            clock=self.clock, sleep=self._sleep, attempt=self._attempt(context),
        )

    def _wait(self, run: RefreshRun, ledger: Any, waiter: Any, *, until_started: bool = False,
              until: float | None = None) -> bool:
        from pbi_taskflow.airflow.compat import task_exception

        try:
            return bool(waiter.wait(until_started=until_started, until=until))
        except task_exception("AirflowTaskTimeout"):
            self.log.warning("The task's execution_timeout passed while waiting for Power BI.")
            if self.policy.cancel_on_timeout:
                waiter.final_check()  # a refresh that ended meanwhile is reported, not cancelled
                self._cancel(run)
                ledger.clear()
            self._run_state = None  # Airflow calls on_kill next: cancel_on_timeout alone decides here
            raise

    def _push_handles(self, context: Mapping[str, Any], run: RefreshRun) -> None:
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=HANDLES_XCOM, value=[h.to_dict() for h in run.handles()])

    def _waited_in_worker(self, run: RefreshRun, ledger: Any, waiter: Any, deferral: Deferral) -> bool:
        """Wait in the worker for refreshes history says end soon (:mod:`~pbi_taskflow.airflow.deferral`); True
        when nothing is left to defer: they ended, or the deadline passed."""
        until = deferral.worker_wait_until(run, self.clock(), self.log)
        if until is None:
            return False
        self._wait(run, ledger, waiter, until=until)
        return run.done or (run.deadline is not None and self.clock() >= run.deadline)

    def _defer(self, run: RefreshRun, deferral: Deferral) -> None:
        from pbi_taskflow.airflow.deferral import defer_timeout

        trigger = deferral.trigger(self.conn_id, run, self.policy)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=defer_timeout(run, self.clock))

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger: everything needed is in the event payload."""
        with failing_fast():
            return self._execute_complete(context, event)

    def _execute_complete(self, context: Any, event: Mapping[str, Any] | None) -> Any:
        from pbi_taskflow.airflow.ledger import Ledger
        from pbi_taskflow.engine.run import RefreshRun

        if not isinstance(event, Mapping) or "run" not in event:
            msg = f"The Power BI trigger ended without a usable event ({event!r}); the task cannot tell the outcome."
            raise RefreshFailedError(msg)
        if event.get("error"):
            self.log.error("The Power BI trigger failed: %s", event["error"])
        run = RefreshRun.from_dict(event["run"])
        self._context = context
        ledger = Ledger(context, STATE_KEY, self.log, max_tries=self._max_tries(context))
        ledger.save(run)
        if event.get("status") == "timeout":
            return self._finish(context, run, ledger, timed_out=True, waiter=self._waiter(context, run, ledger))
        if event.get("status") == "error":
            from pbi_taskflow.airflow.error_event import trigger_error

            raise trigger_error(event, run.results)
        return self._drive(context, run, ledger)

    # --- finishing -----------------------------------------------------------------------------------

    def _cancel(self, run: RefreshRun) -> int:
        from pbi_taskflow.airflow.stopping import cancel_started

        return cancel_started(self._client(), run, self.log)

    def _finish(
        self, context: Any, run: RefreshRun, ledger: Any, *, timed_out: bool = False, started_only: bool = False,
        waiter: Any = None,
    ) -> list[dict[str, Any]]:
        from pbi_taskflow.airflow.report import finish

        return finish(self, context, run, ledger, timed_out=timed_out, started_only=started_only, waiter=waiter)

    def on_kill(self) -> None:
        """Stop waiting; when a person stopped the task, cancel the refreshes it started (``cancel_on_kill``).

        Airflow calls this on every SIGTERM of the task process, a person's action and a worker shutdown
        alike; :func:`pbi_taskflow.airflow.stopping.stopped_by_person` tells them apart. Only a person's kill cancels.
        """
        self._kill_event().set()
        run = self._run_state
        if run is None or not self.policy.cancel_on_kill or not run.started_by_us():
            return
        from pbi_taskflow.airflow.stopping import stopped_by_person

        if stopped_by_person(self._context.get("ti") if self._context else None, len(run.started_by_us()), self.log):
            self._cancel(run)

    # --- lineage ---------------------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from pbi_taskflow.airflow.lineage import openlineage_facets

        return openlineage_facets(self._last_results)


def _profile_arg(value: Any) -> str | None:
    """A ``profile_id`` argument checked before any HTTP call (a GUID or ``None``); a template is checked once
    rendered."""
    if value is None or (isinstance(value, str) and "{{" in value):
        return value  # type: ignore[no-any-return]
    from pbi_taskflow.client.settings import check_profile_id

    return check_profile_id(value)


__all__ = ["HANDLES_XCOM", "STATE_KEY", "PowerBIRefreshOperator", "RefreshTimeoutError"]
