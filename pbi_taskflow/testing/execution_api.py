"""A lean in-process Execution API for ``dag.test()``: only the API version this Task SDK speaks.

``dag.test()`` runs each task against Airflow's real Execution API, served in this process. On its
first request Airflow builds that API for every version it still supports (ten in Airflow 3.3), so
that old workers keep working; that costs a few seconds of CPU per test session. The in-process
client only ever sends the newest version, so :func:`prepare_execution_api` builds the same app from
the same routes with that one version and hands it to ``dag.test()``. Routes kept only for older
clients are left out; everything the Task SDK calls is served by Airflow's own code.

It falls back to Airflow's full API (and logs why) whenever the installed Airflow does not look as
expected: the Task SDK speaks an older version than the newest one, the newest version has head
migrations, or any step fails. ``PBI_TASKFLOW_FULL_EXECUTION_API=1`` always uses the full API.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["FULL_API_ENV", "prepare_execution_api"]

FULL_API_ENV = "PBI_TASKFLOW_FULL_EXECUTION_API"

log = logging.getLogger(__name__)
_lock = threading.Lock()
_prepared: str | None = None  # "lean" or "full" once decided for this process


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def _newest_version_only() -> Iterator[None]:
    """While inside, Airflow's version bundle and router modules hold the one-version bundle and router."""
    from airflow.api_fastapi.execution_api import routes, versions
    from airflow.sdk.api.datamodels._generated import API_VERSION
    from cadwyn import HeadVersion, Version, VersionBundle
    from cadwyn.route_generation import _DELETED_ROUTE_TAG

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
    lean_router.routes = [r for r in full_router.routes if _DELETED_ROUTE_TAG not in getattr(r, "tags", ())]
    versions.bundle = VersionBundle(HeadVersion(), Version(newest))  # type: ignore[attr-defined]
    routes.execution_api_router = lean_router
    try:
        yield
    finally:
        versions.bundle = full_bundle  # type: ignore[attr-defined]
        routes.execution_api_router = full_router


def _build_lean(server: Any) -> None:
    with _newest_version_only():
        app = server.app  # built by Airflow (auth overrides, services, DAG bag) with the lean bundle
    initialize = getattr(app, "_cadwyn_initialize", None)
    if initialize is not None and not getattr(app, "_cadwyn_initialized", True):
        initialize()  # Cadwyn would do this on the first request; failures surface here instead


def prepare_execution_api() -> str:
    """Make ``dag.test()`` in this process use the one-version Execution API; return ``"lean"`` or ``"full"``.

    Idempotent and thread-safe; call it before the first ``dag.test()`` of the process (later calls
    return the decision already made; after a ``dag.test()`` it keeps the full API that call built).
    ``run_dag`` and ``run_task`` call it for you.
    """
    global _prepared
    with _lock:
        if _prepared is not None:
            return _prepared
        _prepared = "full"
        if _truthy(os.environ.get(FULL_API_ENV)):
            return _prepared
        try:
            from airflow.sdk.execution_time import supervisor

            server_factory = supervisor.in_process_api_server
        except (ImportError, AttributeError) as exc:
            log.debug("Full Execution API for dag.test(): %s", exc)
            return _prepared
        server = server_factory()
        if getattr(server, "_app", None) is not None:
            log.debug("Full Execution API for dag.test(): this process built it before run_dag ran")
            return _prepared
        try:
            _build_lean(server)
        except Exception as exc:  # noqa: BLE001 - any surprise means Airflow's own full API is used
            log.info("Using Airflow's full in-process Execution API (%s: %s)", type(exc).__name__, exc)
            cache_clear = getattr(server_factory, "cache_clear", None)
            if cache_clear is not None:
                cache_clear()  # drop the half-built server; Airflow builds a full one on first use
            return _prepared
        _prepared = "lean"
        return _prepared
