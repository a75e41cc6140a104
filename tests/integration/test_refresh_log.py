"""The SQL refresh log on a real SQLite database, and the documented health query run against it."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pbi_taskflow.client.models import RefreshResult, RefreshStatus
from pbi_taskflow.errors import ConfigurationError, RefreshFailedError
from pbi_taskflow.observability.refresh_log import RefreshRecorder, refresh_log_callback, write_refresh_log
from pbi_taskflow.testing.logcapture import LogCapture

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


class StubTI:
    """Plain stand-in for the runtime task instance."""

    def __init__(self, try_number: int = 1, xcom: Any = None) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = "nightly", "refresh", "manual__1", -1
        self.try_number, self._xcom = try_number, xcom

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        return self._xcom


def result(name: str, status: RefreshStatus, duration: float | None, end: str, **kw: Any) -> RefreshResult:
    return RefreshResult(
        workspace_id="ws-1", workspace_name="Finance", dataset_id=f"id-{name}", dataset_name=name,
        refresh_id=f"rid-{name}-{end}", kind="enhanced", status=status, start=end, end=end, duration_s=duration, **kw,
    )


@pytest.fixture
def sqlite_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "refresh_log.db"
    monkeypatch.setenv("AIRFLOW_CONN_LOG_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_rows_written_with_task_facts(sqlite_conn: Path) -> None:
    """Each result becomes one row with DAG, run, task, try, dataset, status, times, error and throttle count."""
    results = [
        result("Sales", RefreshStatus.FAILED, 95.0, "2026-11-27T05:01:35.1234567Z", error_code="ModelRefreshFailed",
               error_message="Column 'Region' not found", throttle_count=2),
        result("Inventory", RefreshStatus.COMPLETED, 42.0, "2026-11-27T05:00:42Z").to_dict(),
    ]
    assert write_refresh_log("log_db", results, {"ti": StubTI(try_number=2)}) == 2
    rows = sqlite3.connect(sqlite_conn).execute(
        "SELECT dag_id, run_id, task_id, try_number, dataset_name, status, ended_at, duration_s, error_code, "
        "error_message, throttle_count, logged_at FROM pbi_refresh_log ORDER BY id").fetchall()
    assert rows[0][:11] == ("nightly", "manual__1", "refresh", 2, "Sales", "Failed", "2026-11-27 05:01:35.123456",
                            95.0, "ModelRefreshFailed", "Column 'Region' not found", 2)
    assert rows[1][4:6] == ("Inventory", "Completed")
    assert rows[1][11] is not None


def test_custom_table_name_and_bad_names(sqlite_conn: Path) -> None:
    """A configurable table name is created on first use; a non-identifier name is rejected clearly."""
    write_refresh_log("log_db", [result("S", RefreshStatus.COMPLETED, 1.0, "2026-11-27T05:00:00Z")], None,
                      table="my_refreshes")
    assert sqlite3.connect(sqlite_conn).execute("SELECT COUNT(*) FROM my_refreshes").fetchone() == (1,)
    with pytest.raises(ConfigurationError, match="Invalid refresh log table name"):
        RefreshRecorder("log_db", table="x; DROP TABLE y")


def test_down_store_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable store (SQLite in a missing folder, a missing connection) logs a warning and returns 0."""
    missing = tmp_path / "no" / "such" / "dir" / "log.db"
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_DB", json.dumps({"conn_type": "sqlite", "host": str(missing)}))
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_TYPE", json.dumps({"conn_type": "http", "host": "example.com"}))
    rows = [result("S", RefreshStatus.COMPLETED, 1.0, "2026-11-27T05:00:00Z")]
    with LogCapture().capturing() as logs:
        assert write_refresh_log("down_db", rows, None) == 0
        assert write_refresh_log("no_such_conn", rows, None) == 0
        assert write_refresh_log("wrong_type", rows, None) == 0
    warnings = [line.message for line in logs.lines if line.level == "warning"]
    assert len(warnings) == 3
    assert "could not write 1 row(s) to table 'pbi_refresh_log' through connection 'down_db'" in warnings[0]
    assert "the refresh log accepts types sqlite, postgres" in warnings[2]


def test_callback_reads_exception_or_xcom(sqlite_conn: Path) -> None:
    """The callback logs results from a RefreshError on failure and from the return_value XCom on success."""
    callback = refresh_log_callback("log_db")
    failed = result("Sales", RefreshStatus.FAILED, 3.0, "2026-11-27T05:00:03Z").to_dict()
    callback({"exception": RefreshFailedError("failed", results=[failed]), "ti": StubTI(try_number=1)})
    ok = result("Sales", RefreshStatus.COMPLETED, 4.0, "2026-11-27T06:00:04Z").to_dict()
    callback({"ti": StubTI(try_number=2, xcom=[ok])})
    rows = sqlite3.connect(sqlite_conn).execute("SELECT try_number, status FROM pbi_refresh_log ORDER BY id").fetchall()
    assert rows == [(1, "Failed"), (2, "Completed")]


def health_query() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### Refresh health query", 1)[1]
    match = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert match, "docs/alerts.md lost its health query"
    return match.group(1)


def health_history() -> list[RefreshResult]:
    """Refreshes of two datasets whose health numbers the health-query tests check."""
    completed, failed = RefreshStatus.COMPLETED, RefreshStatus.FAILED
    return [
        result("Sales", completed, 10.0, "2026-11-20T05:00:00Z"),
        result("Sales", completed, 30.0, "2026-11-21T05:00:00Z"),
        result("Sales", failed, 5.0, "2026-11-22T05:00:00Z"),
        result("Sales", completed, 20.0, "2026-11-23T05:00:00Z"),
        result("Sales", completed, 40.0, "2026-11-24T05:00:00Z"),
        result("Sales", RefreshStatus.SKIPPED, None, "2026-11-25T05:00:00Z"),
        result("Inventory", failed, 7.0, "2026-11-21T06:00:00Z"),
        result("Inventory", completed, 12.0, "2026-11-26T06:00:00Z"),
        result("Inventory", RefreshStatus.TIMED_OUT, None, "2026-11-27T06:00:00Z"),
    ]


def test_documented_health_query_numbers(sqlite_conn: Path) -> None:
    """The health query in docs/alerts.md gives the right success rate, last success/failure and median on SQLite."""
    history = health_history()
    assert write_refresh_log("log_db", history, None) == len(history)
    db = sqlite3.connect(sqlite_conn)
    db.row_factory = sqlite3.Row
    rows = {r["dataset_name"]: dict(r) for r in db.execute(health_query())}
    assert list(rows) == ["Inventory", "Sales"]  # worst success rate first
    sales, inventory = rows["Sales"], rows["Inventory"]
    assert (sales["attempts"], sales["successes"], sales["success_rate_pct"]) == (5, 4, 80.0)
    assert sales["last_success"] == "2026-11-24 05:00:00.000000"
    assert sales["last_failure"] == "2026-11-22 05:00:00.000000"
    assert sales["median_duration_s"] == 25.0  # median of 10, 20, 30, 40
    assert (inventory["attempts"], inventory["successes"], inventory["success_rate_pct"]) == (3, 1, 33.3)
    assert inventory["last_success"] == "2026-11-26 06:00:00.000000"
    assert inventory["last_failure"] == "2026-11-27 06:00:00.000000"
    assert inventory["median_duration_s"] == 12.0


def test_connection_urls() -> None:
    """Airflow connections map to SQLAlchemy URLs: sqlite by file path, postgres with an optional driver."""
    from airflow.sdk import Connection

    from pbi_taskflow.observability.refresh_log import connection_url

    sqlite = Connection(conn_id="a", conn_type="sqlite", host="/data/log.db")
    assert connection_url(sqlite).render_as_string() == "sqlite:////data/log.db"
    pg = Connection(conn_id="b", conn_type="postgres", host="pg.internal", port=5432, login="bi", password="p@ss/w",
                    schema="analytics", extra=json.dumps({"driver": "psycopg"}))
    url = connection_url(pg)
    assert url.render_as_string(hide_password=True) == "postgresql+psycopg://bi:***@pg.internal:5432/analytics"
    assert url.password == "p@ss/w"
    with pytest.raises(ConfigurationError, match="accepts types sqlite, postgres"):
        connection_url(Connection(conn_id="c", conn_type="http", host="x"))


@pytest.mark.parametrize(
    ("installed", "driver"),
    [({"psycopg2", "psycopg"}, "psycopg2"), ({"psycopg"}, "psycopg"), (set(), "psycopg2")],
)
def test_postgres_without_driver_uses_the_installed_one(monkeypatch: pytest.MonkeyPatch, installed: set[str],
                                                        driver: str) -> None:
    """A postgres connection without a driver extra uses psycopg2 when installed, else psycopg 3, as documented."""
    import importlib.util

    from airflow.sdk import Connection

    from pbi_taskflow.observability.refresh_log import connection_url

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in installed else None if name.startswith("psycopg")
                        else real(name, *a))
    pg = Connection(conn_id="b", conn_type="postgres", host="pg.internal", login="bi", schema="analytics")
    assert connection_url(pg).drivername == f"postgresql+{driver}"
