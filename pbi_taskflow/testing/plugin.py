"""The ``pbi_taskflow`` pytest plugin, loaded automatically through the ``pytest11`` entry point.

It offers fixtures for testing DAGs that refresh Power BI: ``airflow_home``, ``run_dag``,
``run_task``, ``dag_bag``, ``dag_policy``, ``pbi_emulator``, ``emulator``, ``pbi_connection``,
``clean_env``, ``pbi_fake_client``, ``webhook_receiver`` and ``smtp_receiver``.

A session that uses none of the Airflow fixtures keeps its own Airflow configuration: the plugin
moves nothing. The Airflow fixtures (:data:`AIRFLOW_FIXTURES`) need Airflow isolated, that is ``AIRFLOW_HOME`` pointed
at a temporary directory with a SQLite database before anything imports Airflow. That happens

- at start-up, before any ``conftest.py`` is imported, when the ini option ``pbi_taskflow_isolate``
  is true or pytest runs with ``--pbi-taskflow-isolate`` (projects made by ``pbi-taskflow new`` set
  the ini option);
- otherwise when a test first requests one of those fixtures, provided nothing has imported Airflow
  yet; if something has, the fixture fails with a message naming the ini option.

Disable the plugin with ``-p no:pbi_taskflow``. Keep your own ``AIRFLOW_HOME`` with
``PBI_TASKFLOW_KEEP_AIRFLOW_HOME=1``. The new database is copied from a per-user cache when one
matches (see :mod:`pbi_taskflow.testing.dbcache`; ``PBI_TASKFLOW_DB_CACHE=0`` turns it off). This
module imports neither Airflow nor the emulator at module level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pbi_taskflow.testing.env import KEEP_HOME_ENV, configure_airflow_env, migrate_db, remove_home
from pbi_taskflow.testing.integrity import DagPolicy

if TYPE_CHECKING:
    from pbi_taskflow.emulator import Emulator
    from pbi_taskflow.testing.fake_client import FakePowerBIClient
    from pbi_taskflow.testing.receivers import SmtpReceiver, WebhookReceiver
    from pbi_taskflow.testing.runner import DagRunResult

_STATE: dict[str, Any] = {}

#: Proxy variables cleared by ``clean_env`` (both spellings).
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy")


#: The ini option that isolates Airflow at start-up, before conftests load.
ISOLATE_INI = "pbi_taskflow_isolate"
#: The command-line flag doing the same for one run.
ISOLATE_FLAG = "--pbi-taskflow-isolate"
#: The fixtures that isolate Airflow when the session has not (directly or through ``airflow_home``).
AIRFLOW_FIXTURES = ("airflow_home", "run_dag", "run_task", "dag_bag", "pbi_connection")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("pbi_taskflow_dag_folder", "DAG folder loaded by the dag_bag fixture (relative to rootdir)",
                  default="dags")
    parser.addini("pbi_taskflow_time_scale", "time_scale of the session emulator (emulated seconds per real second)",
                  default="1.0")
    parser.addini(ISOLATE_INI, "point AIRFLOW_HOME at a temporary directory with a SQLite database at start-up, "
                  "before conftests import Airflow (pbi_taskflow's Airflow fixtures need it)", type="bool",
                  default=False)
    parser.getgroup("pbi_taskflow").addoption(
        ISOLATE_FLAG, action="store_true", default=False, dest="pbi_taskflow_isolate",
        help=f"isolate Airflow at start-up, as the ini option {ISOLATE_INI} = true does",
    )


def _wants_isolation(config: pytest.Config) -> bool:
    """Whether the session turned isolation on (flag or ini option); readable before conftests load."""
    if getattr(config.known_args_namespace, "pbi_taskflow_isolate", False):
        return True
    return bool(config.getini(ISOLATE_INI))


def _isolate(config: pytest.Config | None) -> None:
    """Point Airflow at a temporary home once per session; on failure remember why (and warn, at start-up)."""
    if "configured" in _STATE:
        return
    _STATE["configured"] = True
    keep = os.environ.get(KEEP_HOME_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    try:
        home = configure_airflow_env(keep=keep)
    except RuntimeError as exc:
        _STATE["error"] = str(exc)
        if config is not None:
            config.issue_config_time_warning(pytest.PytestConfigWarning(str(exc)), stacklevel=2)
        return
    _STATE["home"] = home
    _STATE["temporary"] = not (keep and os.environ.get("AIRFLOW_HOME"))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # Before any conftest.py is imported: a conftest that imports Airflow at module level must
    # already see the isolated AIRFLOW_HOME.
    if _wants_isolation(early_config):
        _isolate(early_config)


def pytest_configure(config: pytest.Config) -> None:
    if _wants_isolation(config):
        _isolate(config)  # when the plugin was registered too late for the hook above


def pytest_unconfigure(config: pytest.Config) -> None:
    _STATE.pop("configured", None)
    _STATE.pop("error", None)
    home = _STATE.pop("home", None)
    if home is not None and _STATE.pop("temporary", False):
        remove_home(home)


def _not_isolated_message() -> str:
    where = os.environ.get("AIRFLOW_HOME") or "~/airflow"
    return (
        f"pbi_taskflow: this test uses an Airflow fixture of pbi_taskflow ({', '.join(AIRFLOW_FIXTURES)}), "
        f"but Airflow was imported (by a conftest.py, a test module or another plugin) before they could point "
        f"AIRFLOW_HOME at a temporary directory, so Airflow is configured for {where} and its database. "
        f"Turn isolation on before conftests load: add `{ISOLATE_INI} = true` under [tool.pytest.ini_options] "
        f"in pyproject.toml (or [pytest] in pytest.ini), or run pytest with {ISOLATE_FLAG}. To test against "
        f"that AIRFLOW_HOME on purpose, set {KEEP_HOME_ENV}=1."
    )


@pytest.fixture(scope="session")
def _pbi_taskflow_isolated() -> Path:
    """The isolated Airflow home: the session's, or made now when the session did not turn isolation on."""
    lazily = "configured" not in _STATE
    if lazily:
        _isolate(None)  # not turned on: isolate now, if nothing has imported Airflow yet
    if "home" not in _STATE:
        pytest.fail(_not_isolated_message() if lazily else str(_STATE.get("error")), pytrace=False)
    return Path(_STATE["home"])


@pytest.fixture(scope="session")
def airflow_home(_pbi_taskflow_isolated: Path) -> Path:
    """The isolated Airflow home of this test session, with its SQLite metadata DB created or copied from the cache (once)."""
    migrate_db(cache=True)
    return _pbi_taskflow_isolated


@pytest.fixture
def run_dag(airflow_home: Path) -> Callable[..., DagRunResult]:
    """``run_dag(dag, *, conf=None, logical_date=None, mark_success_pattern=None) -> DagRunResult``."""
    from pbi_taskflow.testing.runner import run_dag as _run_dag

    return _run_dag


@pytest.fixture
def run_task(airflow_home: Path) -> Callable[..., DagRunResult]:
    """``run_task(dag, task_id, *, conf=None, logical_date=None, upstream=True) -> DagRunResult``."""
    from pbi_taskflow.testing.runner import run_task as _run_task

    return _run_task


@pytest.fixture
def dag_policy() -> DagPolicy:
    """The policy ``dag_bag`` enforces; override this fixture in ``conftest.py`` to change it."""
    return DagPolicy()


@pytest.fixture
def dag_bag(airflow_home: Path, request: pytest.FixtureRequest, dag_policy: DagPolicy) -> dict[str, Any]:
    """``{dag_id: dag}`` of the ini option ``pbi_taskflow_dag_folder`` (default ``dags``), checked against ``dag_policy``."""
    from pbi_taskflow.testing.integrity import assert_dag_integrity

    folder = Path(str(request.config.getini("pbi_taskflow_dag_folder")))
    if not folder.is_absolute():
        folder = Path(request.config.rootpath) / folder
    return assert_dag_integrity(folder, policy=dag_policy)


@pytest.fixture(scope="session")
def pbi_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """One HTTPS Power BI + Entra ID emulator for the whole session (prefer ``emulator``, which resets it)."""
    from pbi_taskflow.emulator import Emulator

    scale = float(str(request.config.getini("pbi_taskflow_time_scale")) or "1.0")
    emu = Emulator(port=0, time_scale=scale)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator(pbi_emulator: Emulator) -> Emulator:
    """The session emulator, reset: default tenant and app, no workspaces, no faults, empty request log.

    The process-wide token cache is cleared too, so each test starts without tokens.
    """
    from pbi_taskflow.client.auth import clear_token_caches

    pbi_emulator.reset()
    clear_token_caches()
    return pbi_emulator


@pytest.fixture(scope="session")
def pbi_ca_bundle(pbi_emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEM file trusting the system CAs plus the emulator's CA."""
    from pbi_taskflow.testing.certs import combined_ca_bundle

    return combined_ca_bundle(pbi_emulator.ca_bundle, tmp_path_factory.mktemp("pbi-ca") / "ca-bundle.pem")


@pytest.fixture
def pbi_connection(
    emulator: Emulator, pbi_ca_bundle: Path, monkeypatch: pytest.MonkeyPatch, _pbi_taskflow_isolated: Path
) -> str:
    """Point the Airflow connection ``powerbi_default`` at the (reset) emulator; return the conn id.

    Airflow is isolated first (see the module docstring), so no other connection lookup reaches a
    real metadata database.

    ``AIRFLOW_CONN_POWERBI_DEFAULT`` gets the emulator's connection JSON; CA variables that are set
    (``REQUESTS_CA_BUNDLE`` and friends) are pointed at a bundle that also trusts the emulator, and
    loopback is exempted from any proxy.
    """
    from pbi_taskflow.testing.certs import CA_ENV_VARS

    monkeypatch.setenv("AIRFLOW_CONN_POWERBI_DEFAULT", emulator.airflow_conn_json())
    for name in CA_ENV_VARS:
        if os.environ.get(name):
            monkeypatch.setenv(name, str(pbi_ca_bundle))
    for name in ("NO_PROXY", "no_proxy"):
        current = [part for part in os.environ.get(name, "").split(",") if part]
        monkeypatch.setenv(name, ",".join([*current, "127.0.0.1", "localhost"]))
    return "powerbi_default"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear ``AZURE_*`` and proxy variables and make retry waits instant for the test."""
    for name in list(os.environ):
        if name.startswith("AZURE_") or name in PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    from pbi_taskflow.client import retry
    was_testing = retry.is_testing()
    retry.set_testing(True)
    try:
        yield
    finally:
        retry.set_testing(was_testing)


@pytest.fixture
def pbi_fake_client(mocker: Any) -> FakePowerBIClient:
    """A programmable in-memory stand-in for ``PowerBIClient`` (pure unit tests; records every call)."""
    from pbi_taskflow.testing.fake_client import FakePowerBIClient

    return FakePowerBIClient(mocker)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A webhook on 127.0.0.1 recording POSTs (Teams/Slack stand-in); ``.airflow_conn_json()`` for the notifier's conn."""
    from pbi_taskflow.testing.receivers import WebhookReceiver

    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """A plain SMTP server on 127.0.0.1 recording messages; ``.airflow_conn_json()`` for an ``smtp`` conn."""
    from pbi_taskflow.testing.receivers import SmtpReceiver

    with SmtpReceiver() as receiver:
        yield receiver
