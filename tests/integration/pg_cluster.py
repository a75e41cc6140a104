"""A throwaway PostgreSQL server on loopback for the refresh-log tests (the machine's own PostgreSQL binaries).

``initdb`` and ``pg_ctl`` are looked up on ``PATH`` and in Debian's ``/usr/lib/postgresql/<version>/bin``.
PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user. The server
listens on 127.0.0.1 only, on a free port, trusts local connections, and is stopped (then its files
removed) when the fixture ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    database: str

    def airflow_conn(self) -> dict[str, object]:
        """An Airflow connection (JSON form) to the server's database."""
        return {"conn_type": "postgres", "host": self.host, "port": self.port, "login": self.user,
                "schema": self.database}


def find_binaries() -> tuple[str, str] | None:
    """``(initdb, pg_ctl)`` paths, or None when PostgreSQL's server programs are not installed."""
    found = [shutil.which("initdb"), shutil.which("pg_ctl")]
    if all(found):
        return str(found[0]), str(found[1])
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        initdb, pg_ctl = Path(folder, "initdb"), Path(folder, "pg_ctl")
        if initdb.is_file() and pg_ctl.is_file():
            return str(initdb), str(pg_ctl)
    return None


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def can_run_server() -> bool:
    """PostgreSQL will not run as root: as root, a ``postgres`` user must exist to own the cluster."""
    if not _as_root():
        return True
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return shutil.which("runuser") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _create_database(port: int, name: str) -> None:
    import psycopg2

    db = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=10)
    try:
        db.autocommit = True
        with db.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        db.close()


@contextmanager
def postgres_server(binaries: tuple[str, str]) -> Iterator[PostgresServer]:
    """Start a new cluster with database ``pbi``; stop it and remove its files on exit."""
    initdb, pg_ctl = binaries
    as_root = _as_root()
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="pbi-pg-"))
    data = root / "data"
    if as_root:
        shutil.chown(root, user="postgres")
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-w", "-t", "60", "-l", str(root / "log"),
                        "start"], check=True, capture_output=True, timeout=90)
        try:
            _create_database(port, "pbi")
            yield PostgresServer(host="127.0.0.1", port=port, user="postgres", database="pbi")
        finally:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"],
                           check=False, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
