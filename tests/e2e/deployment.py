"""A distributed Airflow deployment on loopback for the drills: CeleryExecutor, Redis, PostgreSQL.

What runs, each as its own process group, each bound to 127.0.0.1 only:

- PostgreSQL (a throwaway cluster, ``tests/integration/pg_cluster.py``): Airflow's metadata database and the
  Celery result backend;
- Redis (Debian's ``redis-server``) on a free port: the Celery broker, no persistence, bounded memory;
- Airflow: api-server, scheduler, dag-processor, two triggerers, two Celery workers (no log servers: all
  share one ``AIRFLOW_HOME`` on this machine, so the API server reads the logs from the files).

Every component is started with a parent-death signal, so none outlives the process that started it, and
:meth:`Deployment.stop` stops them all (SIGTERM, then SIGKILL by PID) and reports any descendant still alive.
A component that exits or does not become ready in time fails the start with its name and its last log lines.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
DAG_SOURCES = HERE / "dags"
DAG_IDS = ("e2e_worker", "e2e_deferred", "e2e_worker_once", "e2e_fanout_20", "e2e_fanout_200")
#: How long a component may take to become ready, and a DAG run to finish (seconds); bounds, not expectations.
START_TIMEOUT = 180.0
RUN_TIMEOUT = 240.0
#: Celery worker slots per worker (a task waiting in the worker holds one for its whole wait).
WORKER_CONCURRENCY = 8
WORKERS = ("worker-a", "worker-b")
TRIGGERERS = ("triggerer-a", "triggerer-b")


class StartError(RuntimeError):
    """A component of the deployment did not start: which one, why, and its last log lines."""


def pg_cluster() -> Any:
    """The refresh-log tests' throwaway-PostgreSQL module (one copy, shared with ``tests/integration``)."""
    module = sys.modules.get("pg_cluster")
    if module is None:
        spec = importlib.util.spec_from_file_location("pg_cluster", TESTS / "integration" / "pg_cluster.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["pg_cluster"] = module
        spec.loader.exec_module(module)
    return module


def missing_services() -> str | None:
    """Why the deployment cannot run on this machine (a reason to skip), or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
    pg = pg_cluster()
    if pg.find_binaries() is None:
        return "PostgreSQL's server programs (initdb, pg_ctl) are not installed (Debian package postgresql)"
    if not pg.can_run_server():
        return "PostgreSQL refuses to run as root and there is no 'postgres' user to run it"
    return None


#: A process that only sleeps 50 ms at a time and logs each wake-up later than 150 ms: when it stalls, every
#: process on the machine did (CPU starvation), and a loop-lag warning at that moment is the machine's, not a trigger's.
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Component:
    """One long-running process of the deployment, its log, and how to tell it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready: Callable[[Component], bool]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)  # noqa: PLW1509

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self, why: str) -> StartError:
        return StartError(f"{self.name} {why}; last lines of {self.log}:\n{tail(self.log)}")


def wait_ready(components: list[Component], timeout: float = START_TIMEOUT) -> None:
    """Wait until every component is ready; raise :class:`StartError` naming the first that exits or is late."""
    deadline = time.monotonic() + timeout
    pending = list(components)
    while pending:
        for comp in list(pending):
            if not comp.running():
                code = comp.proc.returncode if comp.proc is not None else None
                raise comp.failure(f"exited with code {code} while starting")
            try:
                if comp.ready(comp):
                    pending.remove(comp)
            except Exception:  # noqa: BLE001, S110 - not ready yet (connection refused, not parsed...)
                pass
        if pending and time.monotonic() > deadline:
            raise pending[0].failure(f"was not ready after {timeout:.0f} s")
        if pending:
            time.sleep(0.5)


def redis_ready(comp: Component) -> bool:
    port = int(comp.argv[comp.argv.index("--port") + 1])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def log_says(marker: str) -> Callable[[Component], bool]:
    """Ready once the component's log (since its last start) contains ``marker``."""

    def ready(comp: Component) -> bool:
        text = comp.log.read_text(errors="replace")
        return marker in text.rsplit("===== start ", 1)[-1]

    return ready


@dataclass
class Deployment:
    """The running deployment: REST API, metadata database, process control."""

    home: Path
    env: dict[str, str]
    api: str
    database: dict[str, Any]
    components: dict[str, Component] = field(default_factory=dict)
    token: str | None = None
    seen: set[int] = field(default_factory=set)

    # --- REST API ---------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for attempt in range(5):  # the API server may be briefly busy while the machine is loaded
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    payload = resp.read()
                    return payload.decode(errors="replace") if raw else json.loads(payload or b"null")
            except urllib.error.HTTPError:
                raise
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt == 4:
                    raise
                time.sleep(2)
        raise AssertionError  # pragma: no cover

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances"
                                f"?limit=100&offset={len(out)}")
            out += page["task_instances"]
            if len(out) >= page["total_entries"] or not page["task_instances"]:
                return out

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        return dict(self.request("GET", _ti(dag_id, run_id, task_id, map_index)))

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        return list(self.request("GET", _ti(dag_id, run_id, task_id, map_index) + "/tries")["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        try:
            entry = self.request("GET", f"{_ti(dag_id, run_id, task_id)}/xcomEntries/{key}?deserialize=true"
                                 f"&map_index={map_index}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        value = entry["value"]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The try's log as Airflow's API serves it, plus the triggerer's log of the try (read from the files)."""
        try:
            text = self.request("GET", f"{_ti(dag_id, run_id, task_id)}/logs/{try_number}?full_content=true"
                                f"&map_index={map_index}", raw=True)
        except urllib.error.HTTPError:
            text = ""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        files = sorted(folder.glob(f"attempt={try_number}.log*"))
        return text + "\n" + "\n".join(p.read_text(errors="replace") for p in files)

    def mark(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/{task_id}",
                     {"new_state": state})

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                     {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": False,
                      "reset_dag_runs": True})

    def wait_runs(self, dag_id: str, run_ids: list[str], timeout: float = RUN_TIMEOUT) -> dict[str, str]:
        """Wait until every run has ended; return ``{run_id: state}``; fail naming the unfinished ones."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while True:
            self.remember_descendants()
            for run_id in run_ids:
                if states.get(run_id) not in ("success", "failed"):
                    states[run_id] = self.run_state(dag_id, run_id)
            if all(s in ("success", "failed") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                late = {r: s for r, s in states.items() if s not in ("success", "failed")}
                raise AssertionError(f"{len(late)} run(s) of {dag_id} unfinished after {timeout:.0f} s: {late}; "
                                     f"logs in {self.home}")
            time.sleep(1)

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = RUN_TIMEOUT,
                 every: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.remember_descendants()
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not after {timeout:.0f} s; logs in {self.home}")
            time.sleep(every)

    # --- metadata database ----------------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        db = psycopg2.connect(**self.database, connect_timeout=10)
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            db.close()

    def trigger_holders(self, dag_id: str) -> dict[str, int]:
        """How many of ``dag_id``'s triggers each triggerer (by component name) holds now."""
        rows = self.query(
            "SELECT j.hostname, count(*) FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "LEFT JOIN job j ON j.id = t.triggerer_id WHERE ti.dag_id = %s AND ti.state = 'deferred' "
            "GROUP BY j.hostname", dag_id)
        return {str(host): int(n) for host, n in rows}

    def live_triggerers(self) -> set[str]:
        rows = self.query("SELECT hostname FROM job WHERE job_type = 'TriggererJob' AND state = 'running' AND "
                          "latest_heartbeat > now() - interval '10 seconds'")
        return {str(r[0]) for r in rows}

    # --- processes --------------------------------------------------------------------------------

    def remember_descendants(self) -> None:
        import psutil

        for comp in self.components.values():
            if comp.proc is None:
                continue
            self.seen.add(comp.proc.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                self.seen.update(p.pid for p in psutil.Process(comp.proc.pid).children(recursive=True))

    def task_process(self, ti_id: str) -> int | None:
        """PID of the task process of task instance ``ti_id`` (Airflow titles it ``airflow worker -- <id>``)."""
        import psutil

        for name in WORKERS:
            comp = self.components[name]
            if not comp.running():
                continue
            with contextlib.suppress(psutil.NoSuchProcess):
                for proc in psutil.Process(comp.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if ti_id in " ".join(proc.cmdline()):
                            return int(proc.pid)
        return None

    def worker_of(self, pid: int) -> str | None:
        import psutil

        for name in WORKERS:
            comp = self.components[name]
            with contextlib.suppress(psutil.NoSuchProcess):
                if comp.running() and pid in {p.pid for p in psutil.Process(comp.pid).children(recursive=True)}:
                    return name
        return None

    def signal_group(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to every process of a component (its process group), as a container stop does."""
        self.remember_descendants()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.components[name].pid, sig)

    def signal_main(self, name: str, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.components[name].pid, sig)

    def wait_exit(self, name: str, timeout: float = 90.0) -> int:
        """Wait for a component's main process to exit (SIGKILL its group after ``timeout``); return its code."""
        comp = self.components[name]
        assert comp.proc is not None
        try:
            return comp.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.pid, signal.SIGKILL)
            return comp.proc.wait(timeout=10)

    def restart(self, name: str) -> None:
        """Start a stopped component again (its whole group is SIGKILLed first) and wait until it is ready."""
        comp = self.components[name]
        if comp.running():
            raise AssertionError(f"{name} is still running")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(comp.pid, signal.SIGKILL)
        comp.start()
        wait_ready([comp])
        self.remember_descendants()

    def stop(self) -> list[int]:
        """Stop every component (SIGTERM, then SIGKILL by PID); return the PIDs still alive (should be none)."""
        self.remember_descendants()
        order = [n for n in self.components if n not in ("redis",)] + ["redis"]
        for name in order:
            comp = self.components.get(name)
            if comp is not None and comp.running():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(comp.pid, signal.SIGTERM)
        for sig, grace in ((signal.SIGKILL, 30.0), (None, 10.0)):
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(alive(p) for p in self.seen):
                for comp in self.components.values():
                    if comp.proc is not None:
                        comp.proc.poll()
                time.sleep(0.5)
            left = [p for p in self.seen if alive(p)]
            if not left or sig is None:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        for comp in self.components.values():
            if comp.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    comp.proc.wait(timeout=5)
        return [p for p in self.seen if alive(p)]


def _q(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def _ti(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/{task_id}"
    return f"{path}/{map_index}" if map_index >= 0 else path


def airflow_env(home: Path, api_port: int, db_url: str, redis_port: int, emulator: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "64",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "256",
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "512",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "component_name.hostname",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "4",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        "AIRFLOW__TRIGGERER__CAPACITY": "150",
        "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "25",
        "AIRFLOW_CONN_POWERBI_DEFAULT": emulator.airflow_conn_json(),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


@contextlib.contextmanager
def deployment(emulator: Any, home: Path) -> Iterator[Deployment]:
    """Start the whole deployment pointed at ``emulator``; stop it (and check nothing survives) on exit."""
    pg = pg_cluster()
    binaries = pg.find_binaries()
    with pg.postgres_server(binaries) as server:
        (home / "dags").mkdir(parents=True, exist_ok=True)
        for source in DAG_SOURCES.glob("*.py"):
            shutil.copy(source, home / "dags" / source.name)
        logs = home / "components"
        logs.mkdir(exist_ok=True)
        db_url = f"postgresql+psycopg2://{server.user}@{server.host}:{server.port}/{server.database}"
        api_port, redis_port = free_port(), free_port()
        env = airflow_env(home, api_port, db_url, redis_port, emulator)
        dep = Deployment(home, env, f"http://127.0.0.1:{api_port}",
                         {"host": server.host, "port": server.port, "user": server.user, "dbname": server.database})
        airflow = [sys.executable, "-m", "airflow"]

        def component(name: str, argv: list[str], ready: Callable[[Component], bool], **extra: str) -> None:
            dep.components[name] = Component(name, argv, {**env, "PBI_E2E_COMPONENT": name, **extra},
                                             logs / f"{name}.log", ready)

        component("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--maxmemory", "256mb", "--protected-mode", "yes",
                            "--dir", str(home)], redis_ready)
        component("api-server", [*airflow, "api-server"], lambda c: dep.request("GET", "/api/v2/monitor/health")
                  is not None)
        component("scheduler", [*airflow, "scheduler", "--skip-serve-logs"],
                  lambda c: dep.request("GET", "/api/v2/monitor/health")["scheduler"]["status"] == "healthy")
        component("dag-processor", [*airflow, "dag-processor"], lambda c: all(
            dep.request("GET", f"/api/v2/dags/{d}") for d in DAG_IDS))
        for name in TRIGGERERS:
            component(name, [*airflow, "triggerer", "--skip-serve-logs"], lambda c: c.name in dep.live_triggerers())
        for name in WORKERS:
            component(name, [*airflow, "celery", "worker", "--skip-serve-logs", "--celery-hostname",
                             f"{name}@127.0.0.1", "--without-gossip", "--without-mingle"], log_says(" ready."))
        try:
            dep.components["redis"].start()
            wait_ready([dep.components["redis"]])
            migrate = subprocess.run([*airflow, "db", "migrate"], env=env, capture_output=True, text=True,
                                     timeout=300, check=False)
            if migrate.returncode != 0:
                raise StartError("airflow db migrate failed:\n" + "\n".join(
                    (migrate.stdout + migrate.stderr).splitlines()[-25:]))
            api = dep.components["api-server"]
            api.start()
            wait_ready([api])
            dep.token = dep.request("GET", "/auth/token")["access_token"]
            rest = [c for n, c in dep.components.items() if n not in ("redis", "api-server")]
            for comp in rest:
                comp.start()
            wait_ready(rest)
            dep.remember_descendants()
            yield dep
        finally:
            leftovers = dep.stop()
            if leftovers:
                raise AssertionError(f"processes of the deployment still alive after stop: {leftovers}")
