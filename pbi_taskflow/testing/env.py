"""A throwaway Airflow home for tests and the demo: environment first, database second.

Airflow reads ``AIRFLOW_HOME`` and its configuration once, at the first ``import airflow``, so
:func:`configure_airflow_env` must run before anything imports Airflow. This module imports
nothing from Airflow at module level.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from pbi_taskflow.testing import dbcache

__all__ = ["KEEP_HOME_ENV", "configure_airflow_env", "migrate_db"]

#: Set to ``1`` to keep the ``AIRFLOW_HOME`` of the environment (for example a project's own
#: ``.airflow-home``) instead of a temporary one. Its database is then migrated, never reset.
KEEP_HOME_ENV = "PBI_TASKFLOW_KEEP_AIRFLOW_HOME"

_lock = threading.Lock()
_migrated: set[str] = set()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def configure_airflow_env(home: str | os.PathLike[str] | None = None, *, keep: bool | None = None) -> Path:
    """Point Airflow at an isolated home with a SQLite database; call before the first ``import airflow``.

    Without ``home`` a new temporary directory is created. The variables set are ``AIRFLOW_HOME``,
    ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` (SQLite inside the home), ``AIRFLOW__CORE__DAGS_FOLDER``
    (an empty ``dags`` folder inside the home), ``AIRFLOW__CORE__LOAD_EXAMPLES=False`` and a one-second
    ``AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY`` (Airflow's default is five minutes).

    :param home: directory to use as ``AIRFLOW_HOME``; a temporary one when omitted.
    :param keep: keep the ``AIRFLOW_HOME`` already in the environment and only add the defaults that
        are missing; defaults to the ``PBI_TASKFLOW_KEEP_AIRFLOW_HOME`` environment variable.
    :return: the Airflow home in use.
    """
    if keep is None:
        keep = _truthy(os.environ.get(KEEP_HOME_ENV))
    if keep and os.environ.get("AIRFLOW_HOME"):
        path = Path(os.environ["AIRFLOW_HOME"])
        os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        return path
    if "airflow" in sys.modules:
        # Too late to move Airflow: its configuration is already loaded. Say so instead of
        # silently running against another database.
        msg = (
            "pbi_taskflow: airflow was imported before the test environment was configured, so "
            "AIRFLOW_HOME could not be moved to a temporary directory; import airflow lazily "
            f"(inside tests or fixtures), or set {KEEP_HOME_ENV}=1 to use the current AIRFLOW_HOME."
        )
        raise RuntimeError(msg)
    path = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="pbi-airflow-"))
    (path / "dags").mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(path)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{path / 'airflow.db'}"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(path / "dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY", "1")
    # dag.test() runs a trigger in the task's own process, where Airflow's fast-trigger race cannot happen
    os.environ.setdefault("AIRFLOW__PBI_TASKFLOW__TRIGGER_SETTLE", "0")
    os.environ.setdefault("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    os.environ.setdefault("AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS", "False")
    return path


def migrate_db(*, reset: bool = False, cache: bool = False) -> None:
    """Create (or upgrade) the metadata tables once per process (idempotent, thread-safe).

    A new database is created straight from the ORM models, which is the fast path for the fresh
    SQLite file of a temporary home; an existing one is migrated and keeps its data. With ``cache``,
    a new SQLite database is copied from the per-user cache of :mod:`pbi_taskflow.testing.dbcache`
    when it holds one for this installation and configuration, and stored there after it was
    created; an existing database is never replaced from the cache.

    :param reset: drop every table first (clears an existing database).
    :param cache: use the per-user database cache (the pytest plugin does), unless
        ``PBI_TASKFLOW_DB_CACHE=0`` turns it off.
    """
    from pbi_taskflow.testing import _compat

    key = _compat.metadata_db_url()
    with _lock:
        if key in _migrated:
            return
        database = _new_sqlite_file(key)
        use_cache = database is not None and not reset and cache and dbcache.enabled()
        entry = dbcache.cache_key() if use_cache else None
        # no pooled connection may hold the file being replaced; if that cannot be ensured, create it
        if (
            database is not None
            and entry is not None
            and _compat.release_db_connections()
            and dbcache.load(entry, database)
        ):
            _migrated.add(key)
            return
        _compat.create_metadata_db(reset=reset)
        if database is not None and entry is not None:
            dbcache.store(entry, database)
        _migrated.add(key)


def _new_sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL when it does not exist yet (or is empty), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or url == prefix or url.endswith(":memory:"):
        return None
    path = Path(url[len(prefix):])
    if path.exists() and path.stat().st_size > 0:
        return None
    return path


def remove_home(path: Path) -> None:
    """Delete a temporary Airflow home (best effort)."""
    shutil.rmtree(path, ignore_errors=True)
