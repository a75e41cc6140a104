"""A per-user cache of freshly created Airflow metadata databases (SQLite).

Creating the metadata tables costs about a second of CPU in every test session. The first session
stores the new database in the cache; later sessions copy it into their own temporary
``AIRFLOW_HOME`` instead. Entries are keyed by everything that shapes a new database: the versions
of Airflow (and its providers), SQLAlchemy, Alembic, SQLite and pbi_taskflow, and the ``AIRFLOW__*``
configuration of the environment. A missing, unreadable or corrupt entry is rebuilt.

Entries are written to a temporary file and renamed into place (:func:`os.replace`), so pytest
processes running at the same time never see half-written files. Each session works on its own
copy, never on the cached file.

``PBI_TASKFLOW_CACHE_DIR`` chooses the folder (default ``$XDG_CACHE_HOME/pbi_taskflow``, else
``~/.cache/pbi_taskflow``); ``PBI_TASKFLOW_DB_CACHE=0`` turns the cache off. Delete the folder, or
call :func:`clear`, to empty it. This module imports nothing from Airflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from importlib import metadata
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "DB_CACHE_ENV", "cache_dir", "cache_key", "clear", "enabled", "entry_path", "is_valid_db",
           "load", "store"]

#: Folder of the cache (overrides the default).
CACHE_DIR_ENV = "PBI_TASKFLOW_CACHE_DIR"
#: Set to ``0`` (or ``false``/``no``/``off``) to always create the database instead of copying it.
DB_CACHE_ENV = "PBI_TASKFLOW_DB_CACHE"

#: Bumped when the layout of an entry changes.
_FORMAT = 1
#: Distributions whose versions shape a new metadata database.
_DISTRIBUTIONS = ("sqlalchemy", "alembic", "pbi-taskflow")
#: Settings that differ per Airflow home and do not change the database's content.
_PER_HOME_SETTINGS = frozenset({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__DAGS_FOLDER"})


def enabled() -> bool:
    """Whether the cache is on (``PBI_TASKFLOW_DB_CACHE`` is not ``0``, ``false``, ``no`` or ``off``)."""
    return os.environ.get(DB_CACHE_ENV, "").strip().lower() not in {"0", "false", "no", "off"}


def cache_dir() -> Path:
    """The cache folder: ``$PBI_TASKFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/pbi_taskflow``, else ``~/.cache/pbi_taskflow``."""
    explicit = os.environ.get(CACHE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "pbi_taskflow"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _airflow_versions() -> list[tuple[str, str]]:
    found = set()
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("apache-airflow"):
            found.add((name, dist.version))
    return sorted(found)


def cache_key(environ: dict[str, str] | None = None) -> str:
    """The key of the database the current installation and configuration would create.

    :param environ: the environment whose ``AIRFLOW__*`` settings count (default ``os.environ``).
    :return: a hex digest.
    """
    env = os.environ if environ is None else environ
    parts = {
        "format": _FORMAT,
        "sqlite": sqlite3.sqlite_version,
        "airflow": _airflow_versions(),
        "packages": {name: _version(name) for name in _DISTRIBUTIONS},
        "settings": sorted(
            (name, value) for name, value in env.items()
            if name.startswith("AIRFLOW__") and name not in _PER_HOME_SETTINGS
        ),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def entry_path(key: str) -> Path:
    """Where the database of ``key`` is cached."""
    return cache_dir() / f"airflow-metadata-{key[:32]}.db"


def is_valid_db(path: Path) -> bool:
    """Whether ``path`` is an intact SQLite database whose Alembic revision is recorded."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        conn = sqlite3.connect(path)
        try:
            ok = conn.execute("PRAGMA quick_check").fetchone()
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return ok == ("ok",) and bool(revision and revision[0])


def _remove(path: Path) -> None:
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        with contextlib.suppress(OSError):
            candidate.unlink()


def load(key: str, target: Path) -> bool:
    """Copy the cached database of ``key`` to ``target`` (which must not be in use yet).

    A corrupt entry is deleted, so the next :func:`store` replaces it.

    :return: True when ``target`` now holds the cached database; False on a miss.
    """
    source = entry_path(key)
    if not source.is_file():
        return False
    scratch = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(source, scratch)
    except OSError:
        _remove(scratch)
        return False
    if not is_valid_db(scratch):
        _remove(scratch)
        _remove(source)
        return False
    for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
        with contextlib.suppress(OSError):
            leftover.unlink()
    os.replace(scratch, target)
    return True


def store(key: str, database: Path) -> bool:
    """Save a consistent snapshot of ``database`` as the entry of ``key`` (best effort, never raises).

    :return: True when the entry was written.
    """
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, prefix=".airflow-metadata-", suffix=".part")
        os.close(handle)
    except OSError:
        return False
    scratch = Path(name)
    try:
        source = sqlite3.connect(database)
        try:
            copy = sqlite3.connect(scratch)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        if not is_valid_db(scratch):
            _remove(scratch)
            return False
        os.replace(scratch, entry_path(key))
    except (OSError, sqlite3.Error):
        _remove(scratch)
        return False
    return True


def clear() -> int:
    """Delete every cached database; return how many entries were removed."""
    removed = 0
    folder = cache_dir()
    for path in folder.glob("*airflow-metadata-*"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += path.suffix == ".db"
    return removed
