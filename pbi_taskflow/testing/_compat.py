"""Every private or internal Airflow (and Cadwyn) API the test kit uses, each behind one function here.

Airflow's public interface does not cover what a test kit needs (building the in-process Execution
API, writing a DAG object into the metadata database, creating that database, knowing which task
``dag.test()`` is running), so the kit reaches into Airflow's internals, and only from this module.
Each internal has a fallback that keeps results correct when a future Airflow release moves or
changes it: a slower public path (Airflow's full Execution API, Airflow's CLI, its configuration API)
or, where no other path exists, an error naming the internal. A fallback that costs speed or detail
warns once with :class:`AirflowCompatWarning`. The list, with each fallback, is in docs/testing.md
("Airflow internals the test kit uses"); tests/testing/test_compat.py runs every fallback on each
Airflow release CI tests.

Differences between the supported releases are handled here too: Airflow 3.1 replaced
``DagBag.sync_to_db`` with a module-level ``sync_bag_to_db`` next to ``DagBag`` in
``airflow.models.dagbag``, and gave DAGs ``check_cycle()`` raising the Task SDK's cycle error;
Airflow 3.2 moved both to ``airflow.dag_processing.dagbag``. Airflow 3.0 has
``airflow.models.dagbag.DagBag`` with ``DagBag.sync_to_db`` and
``airflow.utils.dag_cycle_tester.check_cycle`` raising ``airflow.exceptions.AirflowDagCycleException``.
Airflow 3.3 keeps one in-process Execution API per process (``in_process_api_server`` is cached);
earlier releases build one per task, so the one-version API is only built where it is reused.

This module imports nothing from Airflow at module level.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

#: Where each private internal with a fallback lives today, as ``(module, attribute)``. A test points
#: one at a missing name to run its fallback; a new Airflow release that moves one runs it for real.
SETTINGS = ("airflow.settings", "SQL_ALCHEMY_CONN")
ENGINE = ("airflow.settings", "engine")
DB_FUNCTIONS = ("airflow.utils.db", "initdb")
RUN_TASK = ("airflow.sdk.definitions.dag", "_run_task")
RUN_TASK_IN_PROCESS = ("airflow.sdk.execution_time.supervisor", "run_task_in_process")
IN_PROCESS_API_SERVER = ("airflow.sdk.execution_time.supervisor", "in_process_api_server")
DELETED_ROUTE_TAG = ("cadwyn.route_generation", "_DELETED_ROUTE_TAG")


class AirflowCompatWarning(UserWarning):
    """An Airflow internal the test kit uses has changed: a slower or less detailed fallback is used."""


def _warn(what: str, fallback: str, exc: BaseException) -> None:
    warnings.warn(
        f"pbi_taskflow test kit: {what} is not what this version expects ({type(exc).__name__}: {exc}); "
        f"{fallback}. Results stay correct; please report it with your Airflow version.",
        AirflowCompatWarning,
        stacklevel=3,
    )


def _lookup(where: tuple[str, str]) -> Any:
    """``getattr(import_module(module), attribute)``; ImportError or AttributeError when it moved."""
    module, attribute = where
    return getattr(importlib.import_module(module), attribute)


# --- the metadata database (env.py) ------------------------------------------------------------


def metadata_db_url() -> str:
    """The database URL Airflow is configured with (``airflow.settings.SQL_ALCHEMY_CONN``).

    Fallback: Airflow's configuration API, ``conf.get("database", "sql_alchemy_conn")``.
    """
    try:
        url = _lookup(SETTINGS)
        if not isinstance(url, str) or not url:
            msg = f"airflow.settings.SQL_ALCHEMY_CONN is {url!r}"
            raise TypeError(msg)
    except (ImportError, AttributeError, TypeError) as exc:
        _warn("airflow.settings.SQL_ALCHEMY_CONN", "reading [database] sql_alchemy_conn from the configuration", exc)
        from airflow.configuration import conf

        return str(conf.get("database", "sql_alchemy_conn"))
    return url


def release_db_connections() -> bool:
    """Close the pooled connections of Airflow's engine (``airflow.settings.engine.dispose()``).

    :return: False when that is not possible; the caller then must not replace the database file
        (the per-user database cache is skipped, so the database is created instead: slower, correct).
    """
    try:
        engine = _lookup(ENGINE)
        if engine is not None:
            engine.dispose()
    except (ImportError, AttributeError) as exc:
        _warn("airflow.settings.engine", "the metadata database is created instead of copied from the cache", exc)
        return False
    return True


def create_metadata_db(*, reset: bool = False) -> None:
    """Create (or upgrade) the metadata tables: ``airflow.utils.db.initdb()``, or ``resetdb()`` with ``reset``.

    Fallback: Airflow's CLI in a subprocess (``airflow db migrate``, or ``airflow db reset --yes``), a
    few seconds slower.
    """
    module, name = DB_FUNCTIONS
    try:
        create = _lookup((module, "resetdb" if reset else name))
    except (ImportError, AttributeError) as exc:
        _warn(f"{module}.{'resetdb' if reset else name}", "running Airflow's CLI in a subprocess instead", exc)
        command = [sys.executable, "-m", "airflow", "db", *(["reset", "--yes"] if reset else ["migrate"])]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            msg = f"{' '.join(command[2:])} failed with exit code {proc.returncode}:\n{proc.stderr[-3000:]}"
            raise RuntimeError(msg) from exc
        return
    create()


# --- DagBag, writing DAGs to the database, cycles (integrity.py, runner.py) ----------------------


def _dagbag_module() -> Any:
    """The module holding Airflow's ``DagBag``."""
    try:
        import airflow.dag_processing.dagbag as module
    except ImportError:  # Airflow 3.0 and 3.1
        import airflow.models.dagbag as module  # type: ignore[no-redef]
    return module


def dag_bag_class() -> Any:
    """Airflow's ``DagBag`` class."""
    return _dagbag_module().DagBag


def sync_bag(bag: Any, bundle_name: str, bundle_version: str | None) -> None:
    """Write the DAGs of ``bag`` (serialized) into the metadata database under ``bundle_name``."""
    sync_bag_to_db = getattr(_dagbag_module(), "sync_bag_to_db", None)
    if sync_bag_to_db is None:  # Airflow 3.0: a DAG added with bag_dag() has no relative_fileloc, which the DB needs
        for dag in bag.dags.values():
            if getattr(dag, "relative_fileloc", None) is None:
                dag.relative_fileloc = dag.fileloc
        bag.sync_to_db(bundle_name, bundle_version)
        return
    sync_bag_to_db(bag, bundle_name, bundle_version)


def check_cycle(dag: Any) -> None:
    """Raise :func:`cycle_error` if ``dag`` has a cycle."""
    method = getattr(dag, "check_cycle", None)
    if method is not None:
        method()
        return
    from airflow.utils.dag_cycle_tester import check_cycle as airflow_check_cycle  # Airflow 3.0

    airflow_check_cycle(dag)


def cycle_error() -> type[Exception]:
    """The exception class Airflow raises for a DAG with a cycle."""
    try:
        from airflow.sdk.exceptions import AirflowDagCycleException
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import AirflowDagCycleException  # type: ignore[no-redef]
    return AirflowDagCycleException  # type: ignore[no-any-return]


def write_dag(dag: Any, bundle_name: str = "dags-folder") -> None:
    """Write ``dag`` (serialized) into the metadata database, so ``dag.test()`` can create runs of it.

    Internals: ``DagBundlesManager().sync_bundles_to_db()``, a ``DagBag`` that collects nothing,
    ``DagBag.bag_dag`` and :func:`sync_bag`. No fallback: Airflow offers no other way to store a DAG
    object that is not in a DAG folder, so a change fails here with the error naming it.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]
    bag = dag_bag_class()(dag_folder=os.devnull, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag(bag, bundle_name, None)


class RunModels(NamedTuple):
    """Airflow's ORM models a finished run is read back from, and its session factory."""

    task_instance: Any
    xcom: Any
    asset_event: Any
    create_session: Callable[[], contextlib.AbstractContextManager[Any]]


def run_models() -> RunModels:
    """``TaskInstance``, ``XComModel``, ``AssetEvent`` and ``create_session`` (internal ORM API).

    No fallback: reading a run's task instances, XComs and asset events has no other in-process
    path, so a move fails here with the ImportError naming it.
    """
    from airflow.models.asset import AssetEvent
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    return RunModels(TaskInstance, XComModel, AssetEvent, create_session)


# --- which task dag.test() is running (runner.py, logcapture.py) ---------------------------------


def _ti_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs["ti"] if "ti" in kwargs else args[0]


@contextlib.contextmanager
def attributing_tasks(task_scope: Callable[[str, int], contextlib.AbstractContextManager[Any]]) -> Iterator[str]:
    """While inside, each task instance ``dag.test()`` runs is wrapped in ``task_scope(task_id, map_index)``.

    Primary: ``airflow.sdk.definitions.dag._run_task``, called once per task instance (its tries,
    deferrals and inline trigger included), is wrapped. Fallback (with a warning): the public
    ``supervisor.run_task_in_process`` is wrapped instead, and a task's scope stays open until the next
    task starts, so the lines of its inline trigger are still its own (``dag.test()`` runs one task at
    a time). Without either, lines are not attributed (a warning says so): every line is still in
    ``result.logs()``, none in ``result.logs(task_id)``.

    :return: (yielded) ``"run_task"``, ``"run_task_in_process"`` or ``"none"``: the path in use.
    """
    try:
        module = importlib.import_module(RUN_TASK[0])
        original = getattr(module, RUN_TASK[1])
    except (ImportError, AttributeError) as exc:
        missing: BaseException = exc
    else:

        def traced_run_task(*args: Any, **kwargs: Any) -> Any:  # Airflow 3.0 passes no ``task``
            ti = _ti_of(args, kwargs)
            with task_scope(ti.task_id, ti.map_index):
                return original(*args, **kwargs)

        setattr(module, RUN_TASK[1], traced_run_task)
        try:
            yield "run_task"
        finally:
            setattr(module, RUN_TASK[1], original)
        return
    try:
        module = importlib.import_module(RUN_TASK_IN_PROCESS[0])
        original = getattr(module, RUN_TASK_IN_PROCESS[1])
    except (ImportError, AttributeError):
        _warn(f"{RUN_TASK[0]}.{RUN_TASK[1]} (and {'.'.join(RUN_TASK_IN_PROCESS)})",
              "log lines are not attributed to tasks: result.logs() has them all, result.logs(task_id) none", missing)
        yield "none"
        return
    _warn(f"{RUN_TASK[0]}.{RUN_TASK[1]}", "log lines are attributed to tasks through run_task_in_process", missing)
    open_scopes: list[contextlib.AbstractContextManager[Any]] = []

    def close_scope() -> None:
        while open_scopes:
            open_scopes.pop().__exit__(None, None, None)

    def traced_in_process(*args: Any, **kwargs: Any) -> Any:
        close_scope()
        ti = _ti_of(args, kwargs)
        scope = task_scope(ti.task_id, ti.map_index)
        scope.__enter__()
        open_scopes.append(scope)
        return original(*args, **kwargs)

    setattr(module, RUN_TASK_IN_PROCESS[1], traced_in_process)
    try:
        yield "run_task_in_process"
    finally:
        setattr(module, RUN_TASK_IN_PROCESS[1], original)
        close_scope()


# --- the one-version in-process Execution API (execution_api.py) ---------------------------------

_api_lock = threading.Lock()
_api_decision: str | None = None  # "lean" or "full" once decided for this process


@contextlib.contextmanager
def _newest_version_only() -> Iterator[None]:
    """While inside, Airflow's version bundle and router modules hold the one-version bundle and router."""
    from airflow.api_fastapi.execution_api import routes, versions
    from airflow.sdk.api.datamodels._generated import API_VERSION
    from cadwyn import HeadVersion, Version, VersionBundle

    deleted_route_tag = _lookup(DELETED_ROUTE_TAG)
    full_bundle = versions.bundle
    newest = str(full_bundle.versions[0].value)
    if newest != str(API_VERSION):
        msg = f"the Task SDK speaks Execution API {API_VERSION}, Airflow's newest is {newest}"
        raise LookupError(msg)
    if full_bundle.head_version.changes:
        msg = "Airflow's Execution API has head migrations"
        raise LookupError(msg)
    full_router = routes.execution_api_router
    lean_router = copy.copy(full_router)
    # Routes that exist only in older versions would need those versions to be served.
    lean_router.routes = [r for r in full_router.routes if deleted_route_tag not in getattr(r, "tags", ())]
    versions.bundle = VersionBundle(HeadVersion(), Version(newest))  # type: ignore[attr-defined]
    routes.execution_api_router = lean_router
    try:
        yield
    finally:
        versions.bundle = full_bundle  # type: ignore[attr-defined]
        routes.execution_api_router = full_router


def build_lean_execution_api(server: Any) -> None:
    """Build ``server.app`` (an ``InProcessExecutionAPI``) with only the newest Execution API version."""
    with _newest_version_only():
        app = server.app  # built by Airflow (auth overrides, services, DAG bag) with the lean bundle
    initialize = getattr(app, "_cadwyn_initialize", None)
    if initialize is not None and not getattr(app, "_cadwyn_initialized", True):
        initialize()  # Cadwyn would do this on the first request; failures surface here instead


def prepare_lean_execution_api(*, full: bool = False) -> str:
    """Make ``dag.test()`` in this process use the one-version Execution API; return ``"lean"`` or ``"full"``.

    Decided once per process (thread-safe). Fallback, with a warning: when the installed Airflow or
    Cadwyn does not look as expected, Airflow builds its full API on first use, as without the test
    kit (a few seconds slower). Airflow before 3.3 builds an API for every task, so there is nothing
    to reuse and the full one is used quietly.

    :param full: use Airflow's full API (no warning).
    """
    global _api_decision
    with _api_lock:
        if _api_decision is not None:
            return _api_decision
        _api_decision = "full"
        if full:
            return _api_decision
        try:
            server_factory = _lookup(IN_PROCESS_API_SERVER)
        except (ImportError, AttributeError) as exc:
            _warn(".".join(IN_PROCESS_API_SERVER), "Airflow's full Execution API is used (slower)", exc)
            return _api_decision
        cache_clear = getattr(server_factory, "cache_clear", None)
        if cache_clear is None:
            log.debug("Full Execution API for dag.test(): this Airflow builds one per task")
            return _api_decision
        server = server_factory()
        if getattr(server, "_app", None) is not None:
            log.debug("Full Execution API for dag.test(): this process built it before run_dag ran")
            return _api_decision
        try:
            build_lean_execution_api(server)
        except Exception as exc:  # noqa: BLE001 - any surprise means Airflow's own full API is used
            cache_clear()  # drop the half-built server; Airflow builds a full one on first use
            _warn("the in-process Execution API (Cadwyn's version bundle)",
                  "Airflow's full Execution API is used (slower)", exc)
            return _api_decision
        _api_decision = "lean"
        return _api_decision


__all__ = [
    "AirflowCompatWarning",
    "RunModels",
    "attributing_tasks",
    "build_lean_execution_api",
    "check_cycle",
    "create_metadata_db",
    "cycle_error",
    "dag_bag_class",
    "metadata_db_url",
    "prepare_lean_execution_api",
    "release_db_connections",
    "run_models",
    "sync_bag",
    "write_dag",
]
