"""The optional persistent refresh log: one SQL row per refresh attempt, through an Airflow connection.

The table (default ``pbi_refresh_log``) is created when missing. SQLite works out of the box
(connection type ``sqlite``, ``host`` = the database file path); PostgreSQL works with connection type
``postgres`` and a PostgreSQL driver installed (``psycopg2`` when installed, else psycopg 3; extra
``{"driver": "psycopg"}`` picks one). Writing never fails the task: when the store is down or refuses the rows, a
warning is logged and the task carries on.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pbi_taskflow.client.models import RefreshResult, parse_timestamp
from pbi_taskflow.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Engine

__all__ = ["DEFAULT_TABLE", "RefreshRecorder", "refresh_log_callback", "write_refresh_log"]

DEFAULT_TABLE = "pbi_refresh_log"
log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DRIVERS = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mssql": "mssql"}


def _split_table(table: str) -> tuple[str | None, str]:
    parts = table.split(".") if isinstance(table, str) else []
    if not 1 <= len(parts) <= 2 or not all(_IDENT.match(p) for p in parts):
        msg = (
            f"Invalid refresh log table name {table!r}: expected a SQL identifier such as 'pbi_refresh_log' "
            "or 'schema.pbi_refresh_log' (letters, digits and underscores)."
        )
        raise ConfigurationError(msg)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _default_driver(backend: str) -> str | None:
    """``psycopg2`` for PostgreSQL, or psycopg 3 when only that is installed (SQLAlchemy 2.1 would pick psycopg 3)."""
    if backend != "postgresql":
        return None
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return "psycopg"
    return "psycopg2"


def connection_url(conn: Any) -> URL:
    """Build the SQLAlchemy URL of an Airflow connection (``sqlite``, ``postgres``, ``mysql``, ``mssql``).

    :param conn: an Airflow ``Connection``.
    """
    from sqlalchemy.engine import URL

    conn_type = (conn.conn_type or "").lower()
    extra = conn.extra_dejson or {}
    if conn_type == "sqlite":
        return URL.create("sqlite", database=conn.host or conn.schema or ":memory:")
    backend = _DRIVERS.get(conn_type)
    if backend is None:
        msg = (
            f"Connection {conn.conn_id!r} has type {conn.conn_type!r}; the refresh log accepts types "
            "sqlite, postgres, mysql or mssql."
        )
        raise ConfigurationError(msg)
    driver = extra.get("driver") or _default_driver(backend)
    return URL.create(
        f"{backend}+{driver}" if driver else backend,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    )


def _columns() -> list[Any]:
    from sqlalchemy import Column, DateTime, Float, Integer, String, Text

    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("dag_id", String(250)),
        Column("run_id", String(250)),
        Column("task_id", String(250)),
        Column("map_index", Integer),
        Column("try_number", Integer),
        Column("workspace_id", String(64)),
        Column("workspace_name", String(256)),
        Column("dataset_id", String(64), index=True),
        Column("dataset_name", String(256)),
        Column("refresh_id", String(128)),
        Column("kind", String(16)),
        Column("status", String(32)),
        Column("extended_status", String(32)),
        Column("started_at", DateTime(timezone=True)),
        Column("ended_at", DateTime(timezone=True)),
        Column("duration_s", Float),
        Column("error_code", String(128)),
        Column("error_message", Text),
        Column("throttle_count", Integer),
        Column("logged_at", DateTime(timezone=True)),
    ]


def _utc(value: str | None) -> dt.datetime | None:
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        return None
    return parsed.astimezone(dt.timezone.utc) if parsed else None


def _task_facts(context: Mapping[str, Any] | None) -> dict[str, Any]:
    context = context or {}
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "try_number": getattr(ti, "try_number", None),
    }


def rows_for(results: Sequence[RefreshResult | Mapping[str, Any]], context: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The refresh-log rows for ``results`` run in the task described by ``context``."""
    facts = _task_facts(context)
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for item in results:
        result = item if isinstance(item, RefreshResult) else RefreshResult.from_dict(item)
        rows.append(
            {
                **facts,
                "workspace_id": result.workspace_id,
                "workspace_name": result.workspace_name,
                "dataset_id": result.dataset_id,
                "dataset_name": result.dataset_name,
                "refresh_id": result.refresh_id,
                "kind": result.kind,
                "status": result.status.value,
                "extended_status": result.extended_status,
                "started_at": _utc(result.start),
                "ended_at": _utc(result.end),
                "duration_s": result.duration_s,
                "error_code": result.error_code,
                "error_message": result.error_message,
                "throttle_count": result.throttle_count,
                "logged_at": now,
            }
        )
    return rows


class RefreshRecorder:
    """Appends refresh results to a SQL table reached through an Airflow connection.

    :param conn_id: the Airflow connection of the log store (type ``sqlite``, ``postgres``, ``mysql`` or ``mssql``).
    :param table: table name, optionally ``schema.table``; created when missing.
    :param connect_timeout: seconds to wait for the store before giving up.
    """

    def __init__(self, conn_id: str, *, table: str = DEFAULT_TABLE, connect_timeout: int = 10) -> None:
        self.conn_id = conn_id
        self.schema, self.table_name = _split_table(table)
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"RefreshRecorder(conn_id={self.conn_id!r}, table={self.table_name!r})"

    def _engine(self) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        from pbi_taskflow.airflow.compat import get_connection

        url = connection_url(get_connection(self.conn_id))
        connect_args: dict[str, Any] = {"timeout": self.connect_timeout}
        if url.get_backend_name() != "sqlite":
            connect_args = {"connect_timeout": self.connect_timeout} if url.get_backend_name() == "postgresql" else {}
        return create_engine(url, poolclass=NullPool, connect_args=connect_args)

    def table(self) -> Table:
        """The SQLAlchemy table definition (for queries and tests)."""
        from sqlalchemy import MetaData, Table

        return Table(self.table_name, MetaData(schema=self.schema), *_columns())

    def write(self, results: Sequence[RefreshResult | Mapping[str, Any]], context: Mapping[str, Any] | None = None) -> int:
        """Insert one row per result, creating the table if needed; raises on any store error.

        :return: the number of rows written.
        """
        rows = rows_for(results, context)
        if not rows:
            return 0
        engine = self._engine()
        try:
            table = self.table()
            table.metadata.create_all(engine, checkfirst=True)
            with engine.begin() as connection:
                connection.execute(table.insert(), rows)
        finally:
            engine.dispose()
        return len(rows)

    def safe_write(
        self,
        results: Sequence[RefreshResult | Mapping[str, Any]],
        context: Mapping[str, Any] | None = None,
        *,
        logger: Any = None,
    ) -> int:
        """Like :meth:`write`, but a failure only logs a warning and returns 0."""
        logger = logger or log
        try:
            written = self.write(results, context)
        except Exception as exc:  # noqa: BLE001 - a log store outage must never fail the task
            logger.warning(
                "Refresh log: could not write %d row(s) to table %r through connection %r; the task carries on. %s: %s",
                len(results),
                self.table_name,
                self.conn_id,
                type(exc).__name__,
                _short(exc),
            )
            return 0
        logger.info("Refresh log: wrote %d row(s) to table %r (connection %r).", written, self.table_name, self.conn_id)
        return written


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else ""
    return text[:300]


def write_refresh_log(
    conn_id: str,
    results: Sequence[RefreshResult | Mapping[str, Any]],
    context: Mapping[str, Any] | None = None,
    *,
    table: str = DEFAULT_TABLE,
    logger: Any = None,
) -> int:
    """Append one row per refresh result to the refresh log; never raises (a failure logs a warning).

    :param conn_id: the Airflow connection of the log store.
    :param results: the task's refresh results (records or their ``to_dict()`` form).
    :param context: the Airflow task context (for DAG, run, task and try).
    :param table: table name, optionally ``schema.table``.
    :param logger: where to log; defaults to this module's logger.
    :return: the number of rows written (0 on failure).
    """
    try:
        recorder = RefreshRecorder(conn_id, table=table)
    except Exception as exc:  # noqa: BLE001 - a bad setting must never fail the task
        (logger or log).warning("Refresh log disabled: %s", exc)
        return 0
    return recorder.safe_write(results, context, logger=logger)


def refresh_log_callback(conn_id: str, *, table: str = DEFAULT_TABLE) -> Any:
    """A task callback that writes the task's refresh results to the refresh log.

    Use it as both ``on_success_callback`` and ``on_failure_callback``; it reads the results from
    the failure exception or from the task's ``return_value`` XCom.

    :param conn_id: the Airflow connection of the log store.
    :param table: table name, optionally ``schema.table``.
    """
    _split_table(table)

    def _callback(context: Mapping[str, Any]) -> None:
        from pbi_taskflow.alerts.facts import results_from_context

        try:
            results = results_from_context(context)
        except Exception as exc:  # noqa: BLE001 - callbacks must never raise
            log.warning("Refresh log: could not read the task's refresh results: %s", exc)
            return
        write_refresh_log(conn_id, results, context, table=table)

    _callback.__name__ = f"refresh_log_callback_{conn_id}"
    return _callback
