"""The SQL refresh log on a real PostgreSQL server on loopback: table creation, rows, schema-qualified names
and the documented health query.

Runs wherever PostgreSQL's server programs are installed (``.ci/run`` installs them); skipped elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pg_cluster import PostgresServer, can_run_server, find_binaries, postgres_server
from test_refresh_log import StubTI, health_history, health_query, result

from pbi_taskflow.client.models import RefreshResult, RefreshStatus
from pbi_taskflow.observability.refresh_log import RefreshRecorder, write_refresh_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    if not can_run_server():
        pytest.skip("running as root without a 'postgres' user to own the cluster")
    with postgres_server(binaries) as server:
        yield server


@pytest.fixture
def pg_conn(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> PostgresServer:
    monkeypatch.setenv("AIRFLOW_CONN_LOG_PG", json.dumps(postgres.airflow_conn()))
    return postgres


def _query(server: PostgresServer, sql: str) -> list[dict[str, Any]]:
    import psycopg2
    import psycopg2.extras

    with psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname=server.database) as db, \
            db.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
        cursor.execute(sql)
        return [dict(row) for row in cursor.fetchall()]


def _sql(server: PostgresServer, sql: str) -> None:
    import psycopg2

    with psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname=server.database) as db, \
            db.cursor() as cursor:
        cursor.execute(sql)


def test_rows_are_written_with_timezone_aware_times(pg_conn: PostgresServer) -> None:
    """The table is created on first use and each result becomes a row; times keep their UTC instant."""
    _sql(pg_conn, "DROP TABLE IF EXISTS pbi_refresh_log")
    results: list[RefreshResult | dict[str, Any]] = [
        result("Sales", RefreshStatus.FAILED, 95.0, "2026-11-27T05:01:35.1234567Z", error_code="ModelRefreshFailed",
               error_message="Column 'Region' not found", throttle_count=2),
        result("Inventory", RefreshStatus.COMPLETED, 42.0, "2026-11-27T05:00:42Z").to_dict(),
    ]
    assert write_refresh_log("log_pg", results, {"ti": StubTI(try_number=2)}) == 2
    rows = _query(pg_conn, "SELECT * FROM pbi_refresh_log ORDER BY id")
    assert [(r["dataset_name"], r["status"], r["try_number"], r["throttle_count"]) for r in rows] == [
        ("Sales", "Failed", 2, 2), ("Inventory", "Completed", 2, 0)]
    assert rows[0]["ended_at"] == dt.datetime(2026, 11, 27, 5, 1, 35, 123456, tzinfo=dt.timezone.utc)
    assert rows[0]["error_message"] == "Column 'Region' not found"
    assert rows[1]["logged_at"] is not None


def test_a_schema_qualified_table(pg_conn: PostgresServer) -> None:
    """``table="bi.pbi_refresh_log"`` writes into that PostgreSQL schema."""
    _sql(pg_conn, "CREATE SCHEMA IF NOT EXISTS bi")
    recorder = RefreshRecorder("log_pg", table="bi.pbi_refresh_log")
    assert recorder.write([result("Sales", RefreshStatus.COMPLETED, 12.0, "2026-11-27T05:00:12Z")]) == 1
    assert [r["dataset_name"] for r in _query(pg_conn, "SELECT dataset_name FROM bi.pbi_refresh_log")] == ["Sales"]


def test_documented_health_query_runs_unchanged(pg_conn: PostgresServer) -> None:
    """The health query of docs/alerts.md gives the same numbers on PostgreSQL as on SQLite."""
    _sql(pg_conn, "DROP TABLE IF EXISTS pbi_refresh_log")
    history = health_history()
    assert write_refresh_log("log_pg", history, None) == len(history)
    rows = {r["dataset_name"]: r for r in _query(pg_conn, health_query())}
    assert list(rows) == ["Inventory", "Sales"]  # worst success rate first
    sales, inventory = rows["Sales"], rows["Inventory"]
    utc = dt.timezone.utc
    assert (sales["attempts"], sales["successes"], float(sales["success_rate_pct"])) == (5, 4, 80.0)
    assert sales["last_success"] == dt.datetime(2026, 11, 24, 5, tzinfo=utc)
    assert sales["last_failure"] == dt.datetime(2026, 11, 22, 5, tzinfo=utc)
    assert sales["median_duration_s"] == 25.0
    assert (inventory["attempts"], inventory["successes"], float(inventory["success_rate_pct"])) == (3, 1, 33.3)
    assert inventory["last_failure"] == dt.datetime(2026, 11, 27, 6, tzinfo=utc)
    assert inventory["median_duration_s"] == 12.0
