"""The deferrable waiter: one trigger per task watches all of its refreshes in one async loop.

It serializes plain values only (connection id, the task's :class:`~pbi_taskflow.engine.run.RefreshRun`
as a dict, the policy as a dict) and ends with ONE event whose payload carries the updated run, so the
task resumes from the payload alone (``dag.test`` drops ``defer(kwargs=...)``). Event ``status``:

- ``done``: every watched refresh is finished;
- ``start``: a slot freed up (or a blocking refresh ended) and datasets wait to be started by the task;
- ``timeout``: the task's waiting deadline passed;
- ``error``: the trigger could not go on (for example the credentials were refused); ``error`` holds
  its text and ``error_detail`` its class and fields (see :mod:`pbi_taskflow.airflow.error_event`), so the
  task raises the same exception class as it would in the worker.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from pbi_taskflow.client import offloop
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.errors import PowerBIError

if TYPE_CHECKING:
    from pbi_taskflow.client.models import RefreshState
    from pbi_taskflow.engine.probe import Finding
    from pbi_taskflow.engine.run import RefreshRun

#: What a trigger needs to watch refreshes, imported once per triggerer process in a worker thread (see
#: :func:`_load_modules`), not at import time: Airflow imports the trigger's class inside the triggerer's event
#: loop, so everything imported with it stalls every trigger of the process.
MODULES = (
    "pbi_taskflow.engine.run", "pbi_taskflow.engine.waiter", "pbi_taskflow.engine.probe",
    "pbi_taskflow.airflow.error_event", "pbi_taskflow.airflow.heap", "pbi_taskflow.airflow.connection",
    "pbi_taskflow.airflow.compat", "pbi_taskflow.client.aio", "pbi_taskflow.client.settings",
    "pbi_taskflow.client.api", "pbi_taskflow.client.retry",
)

#: The path Airflow stores with a deferred task: the public one (:mod:`pbi_taskflow.trigger`), not this module's,
#: so that moving the implementation never strands a trigger already in the database.
CLASSPATH = "pbi_taskflow.trigger.PowerBIRefreshTrigger"


class PowerBIRefreshTrigger(BaseTrigger):  # type: ignore[misc]
    """Watch the refreshes of one task until they end, a slot frees up, or the deadline passes.

    :param conn_id: the Airflow connection of type ``pbi_taskflow``.
    :param run: :meth:`RefreshRun.to_dict` of the task's refreshes.
    :param policy: :meth:`RefreshPolicy.to_dict` of the task's policy.
    :param not_before: the earliest time (epoch seconds) to fire the event; refreshes that end sooner are
        reported then. It keeps a trigger from firing inside Airflow's race window after the deferral (see
        ``[pbi_taskflow] trigger_settle`` and docs/deploy.md, "Airflow's race on fast triggers").
    """

    def __init__(
        self, conn_id: str, run: Mapping[str, Any], policy: Mapping[str, Any], not_before: float | None = None
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.conn_id = conn_id
        self.run_data = dict(run)
        self.policy_data = dict(policy)
        self.not_before = None if not_before is None else float(not_before)
        RefreshPolicy.from_dict(self.policy_data)  # fail early on a bad payload
        self._run: RefreshRun | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"conn_id": self.conn_id, "run": self.run_data, "policy": self.policy_data}
        if self.not_before is not None:
            kwargs["not_before"] = self.not_before
        return CLASSPATH, kwargs

    async def _client(self) -> Any:
        """A client for the connection; its HTTP client is leased from the process-wide pool (``aclose`` ends it)."""
        conn = await _connection(self.conn_id)
        # Settings, imports and credential set-up happen off the event loop: they may read files and load modules.
        return await offloop.run(_build_client, conn, self.conn_id, self.run_data)

    def _event(self, status: str, run: RefreshRun, error: PowerBIError | None = None) -> TriggerEvent:
        from pbi_taskflow.airflow.error_event import error_to_event

        payload: dict[str, Any] = {"status": status, "run": run.to_dict()}
        if error is not None:
            payload["error"] = str(error)
            payload["error_detail"] = error_to_event(error)
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from pbi_taskflow.airflow.heap import freeze_once

        # the triggerer's start-up heap, out of the full collections that would stall the loop: first, since
        # loading the modules below allocates enough to set off one (a tenth of a second with the GIL held)
        freeze_once()
        await _load_modules()
        from pbi_taskflow.engine.run import RefreshRun

        policy = RefreshPolicy.from_dict(self.policy_data)
        run = RefreshRun.from_dict(self.run_data)
        self._run = run
        client = None
        try:
            client = await self._client()
            event = await self._watch(client, run, policy)
        except PowerBIError as exc:
            event = self._event("error", run, exc)
        except Exception as exc:
            self.log.exception("The Power BI trigger failed unexpectedly")
            message = (
                f"The Power BI trigger failed unexpectedly ({type(exc).__name__}: {exc}). The refreshes it watched are "
                "recorded, so a retry of the task resumes watching them instead of starting them again; the "
                "triggerer log has the traceback."
            )
            event = self._event("error", run, PowerBIError(message))
        finally:
            if client is not None:
                await client.aclose()
        await self._settle()
        yield event

    async def _settle(self) -> None:
        """Hold a quick event until ``not_before``: the scheduler must first see the deferring try's exit."""
        if self.not_before is None:
            return
        remaining = self.not_before - time.time()
        if remaining > 0:
            self.log.info(
                "The refreshes' outcome is known soon after the deferral; reporting it in %.1f s, once Airflow has "
                "settled the deferral ([pbi_taskflow] trigger_settle).", remaining,
            )
            await asyncio.sleep(remaining)

    async def _watch(self, client: Any, run: RefreshRun, policy: RefreshPolicy) -> TriggerEvent:
        from pbi_taskflow.engine.probe import is_probe
        from pbi_taskflow.engine.waiter import apply_observation, track

        client.appearance_grace = policy.appearance_grace
        plan = run.watch_plan(policy)
        while run.active or run.blockers or run.probes:
            now = time.time()
            if run.deadline is not None and now >= run.deadline:
                return self._event("timeout", run)
            if run.pending and run.startable(policy):
                return self._event("start", run)
            track(run, plan, policy, now)  # a settled probe may hand over to a refresh to watch
            due = plan.next_due()
            if due is not None and due > now:
                limit = run.deadline if run.deadline is not None else due
                await asyncio.sleep(min(due, limit) - now)
                continue
            for key in plan.due_now(now):
                if key not in plan.due:
                    continue  # settled by an earlier observation in this round
                if is_probe(key):
                    await self._probe(client, run, plan, key, now, policy)
                    continue
                handle = run.watched_handle(key)
                outcome: RefreshState | PowerBIError
                try:
                    outcome = await client.get_refresh_state(handle)
                except PowerBIError as exc:
                    outcome = exc
                run.absorb(client)
                apply_observation(run, plan, key, now, outcome, self.log, client.result_from)
        return self._event("start" if run.pending else "done", run)

    async def _probe(self, client: Any, run: RefreshRun, plan: Any, key: str, now: float, policy: RefreshPolicy) -> None:
        """One history read for a refresh request whose answer was lost (see :mod:`pbi_taskflow.engine.probe`)."""
        from pbi_taskflow.client import api
        from pbi_taskflow.client.retry import is_transient
        from pbi_taskflow.engine.probe import Probe, find, not_someone_elses
        from pbi_taskflow.engine.run import item_of
        from pbi_taskflow.engine.waiter import apply_probe

        probe = Probe.from_dict(run.probes[key])
        target = probe.target
        outcome: Finding | PowerBIError
        uncertain = False
        try:
            outcome = find(probe, await client.refresh_history(target.workspace_id, target.dataset_id, top=20,
                                                               **item_of(target)))
            if outcome.ours is not None and probe.enhanced:
                match: bool | None
                try:
                    body = (await client.call(api.refresh_details(probe.handle(outcome.ours.request_id)))).body
                    match = api.details_match(target.options, body)
                except PowerBIError as exc:
                    if not (is_transient(exc) or exc.status in (401, 403, 404)):
                        raise
                    match = None
                uncertain = match is None
                outcome = not_someone_elses(outcome, match)
        except PowerBIError as exc:
            outcome = exc
        run.absorb(client)
        apply_probe(run, plan, key, now, outcome, self.log, policy, run.attempt, uncertain=uncertain)

    async def on_kill(self) -> None:
        """The task was killed while deferred: cancel the refreshes it started, when configured."""
        from pbi_taskflow.engine.run import RefreshRun

        policy = RefreshPolicy.from_dict(self.policy_data)
        run = self._run or RefreshRun.from_dict(self.run_data)
        if not policy.cancel_on_kill:
            return
        client = await self._client()
        try:
            for handle in run.started_by_us():
                if not handle.cancellable:
                    self.log.warning("Refresh %s of %r is a standard refresh; Power BI cannot cancel it by API.",
                                     handle.refresh_id, handle.dataset_name)
                    continue
                try:
                    await client.cancel_refresh(handle)
                except PowerBIError as exc:
                    self.log.warning("Could not cancel refresh %s: %s", handle.refresh_id, exc)
        finally:
            await client.aclose()


#: The module loads under way or done, per event loop (:func:`_load_modules`).
_loads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


async def _load_modules() -> None:
    """Import :data:`MODULES` in a worker thread, once per event loop; triggers starting meanwhile wait for it.

    An import runs the imported modules' code, tens of milliseconds here and far more on a busy machine; in a
    thread, the event loop keeps running the other triggers between the thread's turns.
    """
    loop = asyncio.get_running_loop()
    load = _loads.get(loop)
    if load is None:
        load = _loads[loop] = loop.create_task(offloop.run(_import_modules))
    await asyncio.shield(load)


def _import_modules() -> None:
    for name in MODULES:
        importlib.import_module(name)


#: Connection lookups under way, per event loop and connection id.
_lookups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Any]]] = weakref.WeakKeyDictionary()


async def _connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``; triggers that ask while a lookup is under way share its answer.

    A triggerer (re)starting a thousand triggers would otherwise look the same connection up a thousand
    times in one turn of the event loop. Nothing is kept once the lookup ends.
    """
    from pbi_taskflow.airflow.compat import aget_connection

    loop = asyncio.get_running_loop()
    pending = _lookups.setdefault(loop, {})
    lookup = pending.get(conn_id)
    if lookup is None:
        lookup = pending[conn_id] = loop.create_task(aget_connection(conn_id))
        lookup.add_done_callback(lambda task: _looked_up(pending, conn_id, task))
    return await asyncio.shield(lookup)


def _looked_up(pending: dict[str, asyncio.Task[Any]], conn_id: str, task: asyncio.Task[Any]) -> None:
    if pending.get(conn_id) is task:
        del pending[conn_id]
    if not task.cancelled():
        task.exception()  # retrieved here too: every waiter may have been cancelled


def _build_client(conn: Any, conn_id: str, run: Mapping[str, Any] | None = None) -> Any:
    """The async client of the connection, acting as the profile the run's refreshes were started as."""
    from pbi_taskflow.airflow.connection import settings_from_connection

    acting_as = {"profile_id": run["profile_id"]} if run is not None and "profile_id" in run else {}
    return settings_from_connection(conn).build_async_client(conn_id=conn_id, **acting_as)


__all__ = ["PowerBIRefreshTrigger"]
