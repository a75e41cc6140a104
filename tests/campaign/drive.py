"""Run one campaign scenario for real and check the invariants.

The task is a DAG built with ``@powerbi_refresh`` and run with ``run_dag`` (Airflow's ``dag.test()``
on SQLite, MSAL over TLS against the emulator). Process events are simulated where the code under
test cannot tell the difference:

- ``crash_before_post``: the worker dies (``SystemExit``) as it is about to send a refresh POST (a dataset's or a
  dataflow's);
- ``crash_after_post``: it dies after Power BI answered a POST, before the task recorded the refresh;
- ``crash_mid_wait``: it dies after a status read of a running refresh;
- ``triggerer_restart``: the trigger runs a while, is dropped, and a new one is built from the kwargs the
  task serialized when it deferred (a stale copy of the run) and run again;
- ``sigterm``: a worker shutdown: ``on_kill()`` from another thread while the task instance is still
  ``running`` in the metadata DB, then the process ends;
- ``person_kill``: the task instance is set to ``failed`` in the metadata DB (what the UI and the REST
  API do), then ``on_kill()`` runs and the process ends;
- ``clear``: after the DAG run, the task is cleared with Airflow's ``clear_task_instances`` and run again.

A ``race`` / ``race_drop`` fault on ``dataflow_refresh`` is played here too: just before the task's refresh POST
of a dataflow (the one the fault names, or any), another caller's transaction starts
(``start_external_dataflow_refresh``), so Power BI refuses the POST as "already executing"; with ``race_drop`` the
POST's connection is also dropped unanswered, so the task cannot tell whose transaction it sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest import mock

from campaign.scenarios import Scenario
from pbi_taskflow.emulator.dataflows import DATAFLOW_ENDPOINTS
from pbi_taskflow.testing.invariants import TaskObservation, Violation, check, texts_of

WORKSPACE = "Campaign"
#: how long a standard refresh may be missing from the history (real seconds; 180 s in production)
GRACE = 2.0
#: an Airflow execution_timeout that turns a hung task into a visible failure
HANG_GUARD = dt.timedelta(seconds=30)
#: how long the first trigger of a ``triggerer_restart`` runs before it is dropped (real seconds)
TRIGGER_LIFETIME = 0.15
_dag_ids = itertools.count()


@dataclasses.dataclass
class Outcome:
    """What one scenario run gave: the violations, the faults the emulator applied and the events that fired."""

    violations: list[Violation]
    faults: Counter[str]
    events: list[str]
    state: str | None
    seconds: float = 0.0
    #: what the scenario had: ``dataflows``, ``upstream=order`` ... (for the campaign's summary)
    shape: list[str] = dataclasses.field(default_factory=list)


class _Events:
    """The process events of one scenario, as patches on the task's code; records which ones fired."""

    def __init__(self, scenario: Scenario, emulator: Any = None) -> None:
        self.emulator = emulator
        self.races = [dict(f) for f in scenario.faults if f["endpoint"] == "dataflow_refresh"
                      and f["fault"] in ("race", "race_drop")]
        self.raced: Counter[str] = Counter()
        self.wanted = set(scenario.events)
        self.fired: list[str] = []
        self.operator: Any = None
        self.dag_id = ""
        self.just_started = False

    def fire(self, name: str) -> bool:
        if name in self.wanted and name not in self.fired:
            self.fired.append(name)
            return True
        return False

    def race(self, dataflow: str) -> None:
        """Another caller's transaction of ``dataflow`` starts just before the task's refresh POST (a queued race)."""
        race = next((r for r in self.races if r.get("count", 1) > 0 and r.get("dataflow") in (None, dataflow)), None)
        if race is None or self.emulator is None:
            return
        race["count"] = race.get("count", 1) - 1
        try:
            self.emulator.start_external_dataflow_refresh(dataflow, duration=race["duration"],
                                                          refresh_type=race["refresh_type"])
        except ValueError:
            return  # a transaction of the dataflow runs already: Power BI refuses the POST anyway
        if race["fault"] == "race_drop":
            self.emulator.inject("dataflow_refresh", "drop", count=1)
        self.raced[f"{race['fault']}@dataflow"] += 1

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        from pbi_taskflow.airflow.ledger import Ledger
        from pbi_taskflow.airflow.operator import PowerBIRefreshOperator
        from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger
        from pbi_taskflow.client.sync import PowerBIClient
        from pbi_taskflow.engine.waiter import Waiter

        events = self
        execute, trigger_refresh, save, poll = (PowerBIRefreshOperator.execute, PowerBIClient.trigger_refresh,
                                                Ledger.save, Waiter.poll)
        start_dataflow = PowerBIClient.start_dataflow
        trigger_run = PowerBIRefreshTrigger.run

        def execute_spy(op: Any, context: Any) -> Any:
            events.operator = op
            return execute(op, context)

        def trigger_refresh_spy(client: Any, target: Any) -> Any:
            if events.fire("crash_before_post"):
                raise SystemExit("worker lost before the refresh POST")
            handle = trigger_refresh(client, target)
            events.just_started = True
            return handle

        def start_dataflow_spy(client: Any, target: Any) -> Any:
            if events.fire("crash_before_post"):
                raise SystemExit("worker lost before the refresh POST")
            events.race(target.dataset_name)
            requested = start_dataflow(client, target)
            events.just_started = True
            return requested

        def save_spy(ledger: Any, run: Any, **kwargs: Any) -> None:
            if events.just_started:
                events.just_started = False
                if events.fire("crash_after_post"):
                    raise SystemExit("worker lost between the POST's answer and the ledger write")
            save(ledger, run, **kwargs)

        def poll_spy(waiter: Any, key: str, now: float) -> None:
            poll(waiter, key, now)
            if events.fire("crash_mid_wait"):
                raise SystemExit("worker lost while waiting")
            if events.fire("sigterm"):
                events.kill(person=False)
            elif events.fire("person_kill"):
                events.kill(person=True)

        async def trigger_run_spy(trigger: Any) -> AsyncIterator[Any]:
            if not events.fire("triggerer_restart"):
                async for event in _guarded(trigger_run(trigger)):
                    yield event
                return
            kwargs = trigger.serialize()[1]  # what the triggerer keeps: the run as the task deferred it
            first = trigger_run(trigger)
            try:
                event = await asyncio.wait_for(first.__anext__(), timeout=TRIGGER_LIFETIME)
            except asyncio.TimeoutError:
                pass
            else:  # it ended before the restart: the triggerer had delivered its event
                yield event
                return
            finally:
                await first.aclose()
            async for event in _guarded(trigger_run(type(trigger)(**kwargs))):
                yield event

        with mock.patch.object(PowerBIRefreshOperator, "execute", execute_spy), \
                mock.patch.object(PowerBIClient, "trigger_refresh", trigger_refresh_spy), \
                mock.patch.object(PowerBIClient, "start_dataflow", start_dataflow_spy), \
                mock.patch.object(Ledger, "save", save_spy), mock.patch.object(Waiter, "poll", poll_spy), \
                mock.patch.object(PowerBIRefreshTrigger, "run", trigger_run_spy):
            yield

    def kill(self, *, person: bool) -> None:
        """``on_kill()`` from another thread (as Airflow's signal handling does), then the task process ends."""
        op = self.operator

        def kill() -> None:
            if person:
                _mark_failed(self.dag_id)
            op.on_kill()

        killer = threading.Thread(target=kill, name="campaign-kill")
        killer.start()
        killer.join(timeout=30)
        raise SystemExit("the task process ended after on_kill" + (" (killed)" if person else " (shutdown)"))


async def _guarded(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A trigger's events, failing (instead of hanging the campaign) when it runs for too long."""
    iterator = events.__aiter__()
    try:
        while True:
            try:
                event = await asyncio.wait_for(iterator.__anext__(), timeout=HANG_GUARD.total_seconds())
            except StopAsyncIteration:
                return
            yield event
    finally:
        with contextlib.suppress(Exception):
            await iterator.aclose()  # type: ignore[attr-defined]


def _mark_failed(dag_id: str) -> None:
    """What the UI's "mark failed" does to a running task instance: its state becomes failed in the DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, task_id="refresh").all():
            if ti.state == TaskInstanceState.RUNNING:
                ti.state = TaskInstanceState.FAILED
        session.commit()


def _selection(scenario: Scenario) -> list[Any]:
    """The datasets, then the selected dataflows (after what reads them: a lineage order must come from the graph)."""
    from pbi_taskflow import Dataflow, Refresh

    out: list[Any] = []
    for index in range(len(scenario.datasets)):
        ds = scenario.dataset(index)
        out.append(Refresh(ds["name"], type="Full") if ds["enhanced"] else ds["name"])
    return out + [Dataflow(df["name"]) for df in _dataflows(scenario) if df["selected"]]


def _dataflows(scenario: Scenario) -> list[dict[str, Any]]:
    return [scenario.dataflow(index) for index in range(len(scenario.dataflows))]


def build_dag(scenario: Scenario, dag_id: str) -> Any:
    from airflow.sdk import DAG

    from pbi_taskflow import powerbi_refresh

    opt = scenario.option
    selection = _selection(scenario)
    kwargs: dict[str, Any] = {
        "poll_interval": opt("poll")[0], "max_poll_interval": opt("poll")[1], "deferrable": opt("deferrable"),
        "wait": opt("wait"), "timeout": opt("timeout"), "fail_policy": opt("fail_policy"),
        "if_running": opt("if_running"), "retries": opt("retries"), "retry_delay": dt.timedelta(0),
        "cancel_on_kill": opt("cancel_on_kill"), "cancel_on_timeout": opt("cancel_on_timeout"),
        "execution_timeout": HANG_GUARD,
    }
    if opt("max_concurrency") is not None:
        kwargs["max_concurrency"] = opt("max_concurrency")
    if opt("upstream") != "ignore":
        kwargs["upstream"] = opt("upstream")
    with DAG(dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False) as dag:

        @powerbi_refresh(task_id="refresh", workspace=WORKSPACE, **kwargs)
        def refresh() -> Any:
            return selection

        refresh()
    task = dag.task_dict["refresh"]
    if "appearance_grace" in {f.name for f in dataclasses.fields(task.policy)}:
        task.policy = dataclasses.replace(task.policy, appearance_grace=GRACE)
    return dag


def seed_emulator(emulator: Any, scenario: Scenario) -> Counter[str]:
    """The scenario's workspace, dataflows, datasets, lineage links, running foreign refreshes and faults (the
    dataflow races are played by :class:`_Events`); returns the faults by kind."""
    emulator.reset()
    emulator.add_workspace(WORKSPACE)
    for df in _dataflows(scenario):
        emulator.add_dataflow(WORKSPACE, df["name"], duration=df["duration"], outcome=df["outcome"],
                              upstream=df["upstream"])
        if df["busy"]:
            emulator.start_external_dataflow_refresh(df["name"], duration=df["busy"], refresh_type="Scheduled")
    for index in range(len(scenario.datasets)):
        ds = scenario.dataset(index)
        emulator.add_dataset(WORKSPACE, ds["name"], duration=ds["duration"], outcome=ds["outcome"],
                             history_lag=ds["history_lag"], details_lag=ds["details_lag"])
        if ds["busy"]:
            emulator.start_external_refresh(ds["name"], duration=ds["busy"], outcome="Completed")
        if ds["reads"]:
            emulator.link_dataset(WORKSPACE, ds["name"], ds["reads"])
        if ds["past"]:
            emulator.add_history(ds["name"], duration=ds["past"], ago=3600)
    injected: Counter[str] = Counter()
    for fault in scenario.faults:
        if fault["endpoint"] == "dataflow_refresh" and fault["fault"] in ("race", "race_drop"):
            continue
        spec = dict(fault)
        emulator.inject(spec.pop("endpoint"), spec.pop("fault"), **spec)
    return injected


def _clear_and_rerun(dag: Any, run_id: str) -> tuple[str | None, Any, str]:
    """Clear the task with Airflow's own clear, run it again in the same DAG run: (state, XCom, log text)."""
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.models.xcom import XComModel
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    from pbi_taskflow.testing.logcapture import LogCapture

    def ti_query(session: Any) -> Any:
        return session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run_id, task_id="refresh")

    with create_session() as session:
        clear_task_instances(ti_query(session).all(), session)
    capture = LogCapture()
    with capture.capturing(), capture.task("refresh", -1):
        while True:
            with create_session() as session:
                ti = ti_query(session).one()
                if ti.state not in (None, TaskInstanceState.SCHEDULED, TaskInstanceState.UP_FOR_RETRY):
                    break
                ti.try_number += 1  # as the scheduler does when it schedules a try
                ti.state = TaskInstanceState.SCHEDULED
                session.commit()
                with contextlib.suppress(Exception):
                    _run_task(ti=ti, task=dag.task_dict["refresh"], run_triggerer=True)
    with create_session() as session:
        ti = ti_query(session).one()
        state = str(getattr(ti.state, "value", ti.state)) if ti.state is not None else None
        rows = session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=run_id, task_id="refresh").all()
        xcoms = {row.key: XComModel.deserialize_value(row) for row in rows}
    return state, xcoms, capture.text()


def run_scenario(emulator: Any, scenario: Scenario, run_dag: Any) -> Outcome:
    """Seed the emulator, run the task with the scenario's faults and events, check I1-I5."""
    import time

    started = time.monotonic()
    seed_emulator(emulator, scenario)
    dag_id = f"campaign_{next(_dag_ids)}"
    dag = build_dag(scenario, dag_id)
    events = _Events(scenario, emulator)
    events.dag_id = dag_id
    epoch = emulator.clock()
    window = scenario.option("worker_wait_under")
    env = {} if window is None else {"AIRFLOW__PBI_TASKFLOW__WORKER_WAIT_UNDER": str(window)}
    with events.patched(), mock.patch("pbi_taskflow.client.base.APPEARANCE_GRACE", GRACE), \
            mock.patch.dict(os.environ, env):
        result = run_dag(dag)
        state = result.task_states.get("refresh")
        results = result.xcom("refresh")
        texts = texts_of(result.logs(), result.xcoms.values())
        if "clear" in scenario.events:
            events.fire("clear")
            epoch = emulator.clock()
            state, xcoms, log_text = _clear_and_rerun(dag, result.run_id)
            results = xcoms.get("return_value")
            texts += texts_of(log_text, xcoms.values())
    opt = scenario.option
    observation = TaskObservation(
        datasets=[d["name"] for d in scenario.datasets], client_id=emulator.client_id, state=state,
        results=results if isinstance(results, list) else None, texts=texts, fail_policy=opt("fail_policy"),
        if_running=opt("if_running"), wait=opt("wait"), timeout=opt("timeout"),
        cancel_on_kill=opt("cancel_on_kill"), cancel_on_timeout=opt("cancel_on_timeout"),
        killed="person_kill" in events.fired, epoch=epoch,
        dataflows=[df["name"] for df in _dataflows(scenario) if df["selected"]], upstream=opt("upstream"),
    )
    violations = check(emulator, observation)
    applied = Counter(f"{r.fault}@dataflow" if r.endpoint in DATAFLOW_ENDPOINTS else r.fault
                      for r in emulator.requests if r.fault)
    applied.update(events.raced)
    shape = (["dataflows", f"upstream={opt('upstream')}"] if scenario.dataflows else [])
    if any("waiting for them in the worker" in text for text in texts):  # a deferrable task's wait before deferring
        shape.append("deferral:worker_wait")
        if any("running trigger in line" in text for text in texts):
            shape.append("deferral:deferred_after")
    return Outcome(violations, applied, list(events.fired), state, time.monotonic() - started, shape)
