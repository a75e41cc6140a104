"""End to end: a real scheduler, DAG processor, triggerer and API server run a deferrable refresh DAG.

The components are the ones ``airflow standalone`` starts, launched one by one so that each binds
127.0.0.1 only (``standalone`` always starts the log servers on every interface): the API server on
a free loopback port and the scheduler and triggerer with ``--skip-serve-logs``. The refresh goes to
the HTTPS emulator running in this test process. Every process is stopped with SIGINT (then SIGTERM,
then SIGKILL, by PID) and the test checks that none of their descendants survives.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration]

DAG_FILE = '''
from __future__ import annotations
import datetime as dt
from airflow.sdk import dag
from pbi_taskflow import powerbi_refresh

@dag(schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False)
def e2e_deferred_refresh():
    @powerbi_refresh(workspace="Sales", deferrable=True, poll_interval=0.5, max_poll_interval=2)
    def refresh():
        return ["Revenue", "Costs"]

    refresh()

e2e_deferred_refresh()
'''

COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
START_TIMEOUT = 90.0
RUN_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(home: Path, port: int, emulator: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW_CONN_POWERBI_DEFAULT": emulator.airflow_conn_json(),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


class Deployment:
    """The four Airflow components, their API, and a clean stop."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        self.home = home
        self.env = env
        self.base = f"http://127.0.0.1:{port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.seen: set[int] = set()
        self.token: str | None = None

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                              text=True, timeout=120, check=True)

    def start(self) -> None:
        self.airflow("db", "migrate")
        for name, args in COMPONENTS.items():
            log = (self.home / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def remember_descendants(self) -> None:
        import psutil

        for proc in self.procs.values():
            try:
                parent = psutil.Process(proc.pid)
                self.seen.update(p.pid for p in parent.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
            self.seen.add(proc.pid)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.remember_descendants()
            try:
                health = self.request("GET", "/api/v2/monitor/health")
                if all(health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler", "triggerer")):
                    self.token = self.request("GET", "/auth/token")["access_token"]
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(1)
        pytest.fail(f"Airflow did not become healthy in {START_TIMEOUT:.0f} s; logs in {self.home}")

    def run_dag(self, dag_id: str) -> str:
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            try:
                self.request("GET", f"/api/v2/dags/{dag_id}")
                break
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"DAG {dag_id} was never parsed; logs in {self.home}")
                time.sleep(1)
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
        run_id = run["dag_run_id"]
        while time.monotonic() < deadline:
            self.remember_descendants()
            state = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(1)
        pytest.fail(f"DAG run {run_id} did not finish in {RUN_TIMEOUT:.0f} s; logs in {self.home}")
        raise AssertionError  # pragma: no cover

    def xcom(self, dag_id: str, task_id: str) -> Any:
        runs = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
        run_id = runs[-1]["dag_run_id"]
        entry = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
        return entry["value"]

    def stop(self) -> list[int]:
        """SIGINT every component, escalate by PID if needed; return descendants still alive (should be none)."""
        import psutil

        self.remember_descendants()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        # Each step waits its grace, then sends the next signal; the last step only waits for the SIGKILLed.
        for sig, grace in ((None, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0), (None, 5.0)):
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(psutil.pid_exists(p) and _alive(p) for p in self.seen):
                time.sleep(0.5)
            alive = [p for p in self.seen if psutil.pid_exists(p) and _alive(p)]
            if not alive:
                return []
            if sig is None:
                continue
            for pid in alive:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        return [p for p in self.seen if psutil.pid_exists(p) and _alive(p)]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def deployment(emulator: Any, clean_env: None, tmp_path: Path) -> Iterator[Deployment]:
    """The four components on loopback, pointed at the emulator, stopped after the test."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "e2e_refresh.py").write_text(textwrap.dedent(DAG_FILE))
    port = _free_port()
    dep = Deployment(home, _environment(home, port, emulator), port)
    dep.start()
    try:
        yield dep
    finally:
        leftovers = dep.stop()
        for proc in dep.procs.values():
            proc.wait(timeout=5)
        assert leftovers == [], f"processes still alive after stop: {leftovers}"


def test_deferrable_refresh_dag_succeeds_under_scheduler_and_triggerer(emulator: Any, deployment: Deployment) -> None:
    """A deferrable two-dataset refresh DAG triggered through the API ends in success, polled by the triggerer."""
    emulator.add_workspace("Sales")
    emulator.add_dataset("Sales", "Revenue", duration=2.0)
    emulator.add_dataset("Sales", "Costs", duration=1.0)
    deployment.wait_healthy()
    state = deployment.run_dag("e2e_deferred_refresh")
    assert state == "success", f"logs in {deployment.home}"
    records = deployment.xcom("e2e_deferred_refresh", "refresh")
    assert sorted((r["dataset_name"], r["status"]) for r in records) == [("Costs", "Completed"), ("Revenue", "Completed")]
    assert emulator.count("refresh_post") == 2
    trigger_logs = list((deployment.home / "logs").rglob("*.log.trigger.*"))
    assert trigger_logs, "the refresh never deferred to the triggerer"
    text = "".join(p.read_text(errors="replace") for p in trigger_logs)
    assert "Power BI refresh state" in text
    assert "status=Completed" in text
