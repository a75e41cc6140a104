"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, against a real Airflow on loopback.

The tests skip, saying why, only where no Chromium can be found (``.ci/run`` installs Debian's ``chromium``
where it is missing; ``PBI_TASKFLOW_CHROMIUM`` names another executable). Playwright's own browser
download is never used. A failing test leaves a screenshot, the page's HTML and the Airflow logs under
the session's ``ui-artifacts`` folder, whose path is printed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ui._airflow import AIRFLOW_VERSION, PROVIDER_FORM, AirflowUnderTest

CHROMIUM_ENV = "PBI_TASKFLOW_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium to drive: ``$PBI_TASKFLOW_CHROMIUM``, else the first of the usual names on PATH."""
    named = os.environ.get(CHROMIUM_ENV, "").strip()
    if named:
        return named if os.access(named, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


#: The test module of the provider's own connection form (Airflow 3.2+); test_airflow_3_0_ui.py tests 3.0 and 3.1's.
PROVIDER_FORM_MODULE = "test_airflow_ui.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On Airflow 3.0 and 3.1, skip the tests of the form fields those releases do not render, saying why."""
    if PROVIDER_FORM:
        return
    skip = pytest.mark.skip(reason=(
        f"Airflow {'.'.join(map(str, AIRFLOW_VERSION))} does not render the provider's connection form fields "
        "(conn-fields, from 3.2 on): its Standard Fields and Extra Fields JSON form is tested by test_airflow_3_0_ui.py"
    ))
    for item in items:
        if item.path.name == PROVIDER_FORM_MODULE and item.path.parent == Path(__file__).parent:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"ui_report_{report.when}", report)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(f"no Chromium found (install Debian's 'chromium' package, as .ci/run does, or set {CHROMIUM_ENV})")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (it is in the 'dev' extra)")
    return path


@pytest.fixture(scope="session")
def ui_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where failing browser tests leave their screenshots, pages and Airflow logs."""
    return tmp_path_factory.getbasetemp() / "ui-artifacts"


@pytest.fixture(scope="module")
def airflow_ui(chromium: str, pbi_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowUnderTest]:
    """Airflow's API server, scheduler and DAG processor on loopback; the emulator reset once for the module."""
    from pbi_taskflow.testing.certs import CA_ENV_VARS

    pbi_emulator.reset()
    airflow = AirflowUnderTest(tmp_path_factory.mktemp("airflow-ui"))
    for name in CA_ENV_VARS:  # a CA variable set on this machine must also trust the emulator
        if airflow.env.get(name):
            airflow.env[name] = pbi_emulator.ca_bundle
    airflow.start()
    try:
        airflow.wait_healthy()
        yield airflow
    finally:
        airflow.stop()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, airflow_ui: AirflowUnderTest, ui_artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page on the Airflow UI; on failure its screenshot, HTML and the Airflow logs are kept."""
    context = browser.new_context(base_url=airflow_ui.base, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "ui_report_call", None)
        if report is not None and report.failed:
            folder = ui_artifacts / request.node.name.replace("/", "_")
            folder.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=str(folder / "page.png"), full_page=True)
                (folder / "page.html").write_text(page.content())
            except Exception as exc:  # noqa: BLE001 - keep what can be kept
                (folder / "screenshot-error.txt").write_text(repr(exc))
            for name in ("api-server", "scheduler", "dag-processor"):
                log = airflow_ui.home / f"{name}.log"
                if log.exists():
                    shutil.copy(log, folder / f"{name}.log")
            print(f"\nbrowser test artifacts (screenshot, page, Airflow logs): {folder}")
        context.close()
