"""The per-user cache of new Airflow metadata databases: keys, hits, misses, corruption, concurrency."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pbi_taskflow.testing import dbcache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(dbcache.CACHE_DIR_ENV, str(folder))
    return folder


def _make_db(path: Path, *, rows: int = 3, wal: bool = False) -> Path:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE alembic_version (version_num TEXT NOT NULL)")
    conn.execute("INSERT INTO alembic_version VALUES ('abc123')")
    conn.execute("CREATE TABLE slot_pool (name TEXT)")
    conn.executemany("INSERT INTO slot_pool VALUES (?)", [(f"pool{i}",) for i in range(rows)])
    conn.commit()
    if not wal:
        conn.close()
    return path


def _rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM slot_pool ORDER BY name")]
    finally:
        conn.close()


def test_cache_dir_prefers_env_then_xdg_then_home(monkeypatch, tmp_path):
    """The folder is PBI_TASKFLOW_CACHE_DIR, else $XDG_CACHE_HOME/pbi_taskflow, else ~/.cache/pbi_taskflow."""
    monkeypatch.delenv(dbcache.CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dbcache.cache_dir() == tmp_path / "home" / ".cache" / "pbi_taskflow"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dbcache.cache_dir() == tmp_path / "xdg" / "pbi_taskflow"
    monkeypatch.setenv(dbcache.CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert dbcache.cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize(("value", "expected"), [("", True), ("1", True), ("0", False), ("off", False), ("No", False)])
def test_enabled_follows_env(monkeypatch, value, expected):
    """PBI_TASKFLOW_DB_CACHE=0/off/no turns the cache off; anything else (or unset) leaves it on."""
    monkeypatch.setenv(dbcache.DB_CACHE_ENV, value)
    assert dbcache.enabled() is expected


def test_key_changes_with_versions_and_settings(monkeypatch):
    """A new Airflow, pbi_taskflow or SQLAlchemy version, or another AIRFLOW__ setting, gives another key."""
    env = {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    base = dbcache.cache_key(env)
    assert dbcache.cache_key(dict(env)) == base

    assert dbcache.cache_key({**env, "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "True"}) != base

    real_version = dbcache._version
    monkeypatch.setattr(dbcache, "_version", lambda name: "99.0" if name == "pbi-taskflow" else real_version(name))
    assert dbcache.cache_key(env) != base
    monkeypatch.setattr(dbcache, "_version", real_version)

    monkeypatch.setattr(dbcache, "_airflow_versions", lambda: [("apache-airflow-core", "9.9.9")])
    assert dbcache.cache_key(env) != base


def test_key_ignores_per_home_settings():
    """The database URL and DAG folder differ per session and must not split the cache."""
    one = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////a/airflow.db", "AIRFLOW__CORE__DAGS_FOLDER": "/a/dags"}
    two = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////b/airflow.db", "AIRFLOW__CORE__DAGS_FOLDER": "/b/dags"}
    assert dbcache.cache_key(one) == dbcache.cache_key(two)


def test_miss_then_store_then_hit_copies(cache, tmp_path):
    """A miss loads nothing; after store, load copies an identical, independent database."""
    key = dbcache.cache_key()
    target = tmp_path / "home" / "airflow.db"
    target.parent.mkdir()
    assert dbcache.load(key, target) is False
    assert not target.exists()

    source = _make_db(tmp_path / "fresh.db")
    assert dbcache.store(key, source) is True
    assert dbcache.entry_path(key).is_file()

    assert dbcache.load(key, target) is True
    assert _rows(target) == ["pool0", "pool1", "pool2"]
    conn = sqlite3.connect(target)
    conn.execute("DELETE FROM slot_pool")
    conn.commit()
    conn.close()
    assert _rows(dbcache.entry_path(key)) == ["pool0", "pool1", "pool2"]  # the cached copy is untouched


def test_store_snapshots_uncheckpointed_wal_data(cache, tmp_path):
    """Rows still in the -wal file of a live WAL database (as Airflow leaves it) are in the cached copy."""
    key = dbcache.cache_key()
    source = tmp_path / "live.db"
    _make_db(source, rows=5, wal=True)
    assert Path(f"{source}-wal").stat().st_size > 0
    assert dbcache.store(key, source) is True
    target = tmp_path / "copy.db"
    assert dbcache.load(key, target) is True
    assert len(_rows(target)) == 5


@pytest.mark.parametrize("damage", [b"not a database at all" * 100, b""])
def test_corrupt_entry_is_a_miss_and_removed(cache, tmp_path, damage):
    """A garbage or empty entry is never copied: load reports a miss, deletes it, and a new store fixes it."""
    key = dbcache.cache_key()
    entry = dbcache.entry_path(key)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(damage)
    target = tmp_path / "airflow.db"
    assert dbcache.load(key, target) is False
    assert not target.exists()
    assert not entry.exists()
    assert dbcache.store(key, _make_db(tmp_path / "fresh.db")) is True
    assert dbcache.load(key, target) is True


def test_entry_without_revision_is_rejected(cache, tmp_path):
    """A database whose Alembic revision is missing (a half-created schema) does not count as cached."""
    key = dbcache.cache_key()
    broken = tmp_path / "broken.db"
    conn = sqlite3.connect(broken)
    conn.execute("CREATE TABLE alembic_version (version_num TEXT NOT NULL)")
    conn.commit()
    conn.close()
    assert dbcache.store(key, broken) is False
    assert not dbcache.entry_path(key).exists()


def test_concurrent_stores_and_loads_never_copy_a_partial_file(cache, tmp_path):
    """Writers and readers racing on one key only ever see a miss or a complete database."""
    key = dbcache.cache_key()
    source = _make_db(tmp_path / "fresh.db", rows=200)
    problems: list[str] = []

    def writer() -> None:
        for _ in range(15):
            dbcache.store(key, source)

    def reader(index: int) -> None:
        for attempt in range(15):
            target = tmp_path / f"reader{index}-{attempt}.db"
            if dbcache.load(key, target) and len(_rows(target)) != 200:
                problems.append(str(target))

    threads = [threading.Thread(target=writer) for _ in range(2)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    assert dbcache.is_valid_db(dbcache.entry_path(key))
    assert not list(dbcache.cache_dir().glob("*.part"))


def test_clear_removes_entries(cache, tmp_path):
    """clear() empties the cache and says how many databases it removed."""
    dbcache.store(dbcache.cache_key(), _make_db(tmp_path / "fresh.db"))
    assert dbcache.clear() == 1
    assert not list(cache.glob("*.db"))


MIGRATE_SCRIPT = '''
import json, sys
import atexit
from pbi_taskflow.testing.env import configure_airflow_env, migrate_db, remove_home
home = configure_airflow_env()
atexit.register(remove_home, home)
from airflow.utils import db
calls = []
real_initdb = db.initdb
def counting_initdb(*args, **kwargs):
    calls.append(1)
    return real_initdb(*args, **kwargs)
db.initdb = counting_initdb
migrate_db(cache=sys.argv[1] == "cache")
from airflow.models import Variable
Variable.set("probe", "written")
from airflow.models.pool import Pool
from airflow.utils.session import create_session
with create_session() as session:
    pools = [pool.pool for pool in session.query(Pool)]
print(json.dumps({"initdb": len(calls), "variable": Variable.get("probe"), "pools": pools, "home": str(home)}))
'''


def _migrate_in_fresh_process(tmp_path: Path, cache_folder: Path, *, cache: bool = True) -> dict[str, object]:
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env[dbcache.CACHE_DIR_ENV] = str(cache_folder)
    env.pop(dbcache.DB_CACHE_ENV, None)
    script = tmp_path / "migrate.py"
    script.write_text(textwrap.dedent(MIGRATE_SCRIPT))
    proc = subprocess.run([sys.executable, str(script), "cache" if cache else "no-cache"], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result: dict[str, object] = json.loads(lines[-1])
    return result


@pytest.mark.slow
@pytest.mark.integration
def test_migrate_db_stores_then_copies_then_rebuilds(tmp_path):
    """Fresh processes: a miss runs initdb and fills the cache, a hit copies it (no initdb), a corrupt entry rebuilds.

    Without ``cache=True`` (scripts, the demo) nothing is read from or written to the cache.
    """
    folder = tmp_path / "cache"
    uncached = _migrate_in_fresh_process(tmp_path, folder, cache=False)
    assert uncached["initdb"] == 1
    assert not list(folder.glob("*.db"))

    first = _migrate_in_fresh_process(tmp_path, folder)
    assert first["initdb"] == 1
    entries = list(folder.glob("*.db"))
    assert len(entries) == 1

    second = _migrate_in_fresh_process(tmp_path, folder)
    assert second["initdb"] == 0
    assert second["variable"] == "written"
    assert second["pools"] == ["default_pool"]
    assert second["home"] != first["home"]

    entries[0].write_bytes(b"\0" * 4096)
    third = _migrate_in_fresh_process(tmp_path, folder)
    assert third["initdb"] == 1
    assert dbcache.is_valid_db(entries[0])
