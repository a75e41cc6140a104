"""A real Airflow on loopback for the browser tests: API server (with the UI), scheduler and DAG processor.

Its own ``AIRFLOW_HOME`` and SQLite database, all-admins simple auth (no login page), the connection Test
button enabled, a fixed Fernet key (so the test can read what the form saved, decrypted, straight from
the database) and a LocalExecutor. Every process group it started is stopped by PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Any

START_TIMEOUT = 120.0

#: The Airflow release under test, as ``(major, minor)``.
AIRFLOW_VERSION = tuple(int(part) for part in version("apache-airflow-core").split(".")[:2])
#: Airflow renders the provider's own connection form fields (``conn-fields``) from 3.2 on; 3.0 and 3.1 show
#: the standard fields and the Extra Fields JSON editor for this connection type.
PROVIDER_FORM = AIRFLOW_VERSION >= (3, 2)

COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AirflowUnderTest:
    """The components, their REST API and the metadata database."""

    def __init__(self, home: Path) -> None:
        from cryptography.fernet import Fernet

        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.fernet_key = Fernet.generate_key().decode()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.token: str | None = None
        (home / "dags").mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__PBI_TASKFLOW__POLL_MIN_INTERVAL": "0.2",
                "AIRFLOW__PBI_TASKFLOW__POLL_MAX_INTERVAL": "1",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )

    # --- processes ---------------------------------------------------------------------------------

    def start(self) -> None:
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=self.env, capture_output=True,
                       timeout=180, check=True)
        for name, args in COMPONENTS.items():
            with (self.home / f"{name}.log").open("wb") as log:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def wait_healthy(self) -> None:
        """Until the API answers and the scheduler heartbeats (bounded), then get an API token."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    msg = f"airflow {name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                    raise RuntimeError(msg)
            try:
                health = self.request("GET", "/api/v2/monitor/health")
                if all(health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler")):
                    self.token = self.request("GET", "/auth/token")["access_token"]
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.5)
        msg = f"Airflow did not become healthy in {START_TIMEOUT:.0f} s:\n{self.log_tail('api-server')}"
        raise RuntimeError(msg)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM each component's process group, SIGKILL what is left after 10 s."""
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            for proc in self.procs.values():
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(p.poll() is None for p in self.procs.values()):
                time.sleep(0.2)
        for proc in self.procs.values():
            proc.wait(timeout=10)

    # --- REST API and database ---------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=20) as resp:
            return json.loads(resp.read() or b"null")

    def stored_connection(self, conn_id: str) -> dict[str, Any]:
        """The connection as the database holds it, decrypted: what a task's hook will read."""
        from cryptography.fernet import Fernet

        fernet = Fernet(self.fernet_key.encode())

        def clear(value: str | None, encrypted: bool) -> str | None:
            return fernet.decrypt(value.encode()).decode() if value and encrypted else value

        with sqlite3.connect(self.home / "airflow.db") as db:
            row = db.execute(
                "SELECT conn_type, login, password, is_encrypted, extra, is_extra_encrypted FROM connection "
                "WHERE conn_id = ?", (conn_id,),
            ).fetchone()
        if row is None:
            msg = f"connection {conn_id!r} is not in the database"
            raise LookupError(msg)
        conn_type, login, password, is_encrypted, extra, is_extra_encrypted = row
        return {"conn_id": conn_id, "conn_type": conn_type, "login": login,
                "password": clear(password, bool(is_encrypted)),
                "extra": json.loads(clear(extra, bool(is_extra_encrypted)) or "{}")}

    def run_dag(self, dag_id: str, timeout: float = 120.0) -> tuple[str, str]:
        """Trigger ``dag_id`` once it is parsed; wait for the run to end; return ``(run_id, state)``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.request("GET", f"/api/v2/dags/{dag_id}")
                break
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    msg = f"DAG {dag_id} was never parsed:\n{self.log_tail('dag-processor')}"
                    raise RuntimeError(msg) from None
                time.sleep(0.5)
        run_id = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]
        while time.monotonic() < deadline:
            state = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return run_id, str(state)
            time.sleep(0.5)
        msg = f"DAG run {run_id} did not end in {timeout:.0f} s:\n{self.log_tail('scheduler')}"
        raise RuntimeError(msg)
