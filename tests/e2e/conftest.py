"""The drill deployment, started once per session and shared by every drill, and the drills' summary line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from deployment import Deployment, StartError, deployment, missing_services


@dataclass
class Tally:
    """What the drills did, for the line printed at the end of the session."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refreshes_started: int = 0
    refreshes_expected: int = 0
    cancels: int = 0
    notes: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    deployment_seconds: float | None = None

    def line(self) -> str:
        total = len(self.passed) + len(self.failed)
        took = time.monotonic() - self.started_at
        start = f", deployment up in {self.deployment_seconds:.0f} s" if self.deployment_seconds is not None else ""
        failed = f" (failed: {', '.join(self.failed)})" if self.failed else ""
        notes = "".join(f"; {n}" for n in self.notes)
        return (f"drills: {len(self.passed)}/{total} passed{failed}; refreshes started {self.refreshes_started} "
                f"(expected {self.refreshes_expected}); cancels {self.cancels}; {took:.0f} s{start}{notes}")


TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Tally:
    return TALLY


@pytest.fixture(scope="session")
def drill_deployment(pbi_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """CeleryExecutor + Redis + PostgreSQL, two workers, two triggerers, pointed at the session emulator."""
    reason = missing_services()
    if reason:
        pytest.skip(reason)
    began = time.monotonic()
    try:
        with deployment(pbi_emulator, tmp_path_factory.mktemp("airflow")) as dep:
            TALLY.deployment_seconds = time.monotonic() - began
            yield dep
    except StartError as exc:
        pytest.fail(f"the deployment did not start: {exc}", pytrace=False)


@pytest.fixture
def deployed(drill_deployment: Deployment, pbi_emulator: Any) -> Deployment:
    """The shared deployment, with every component running again (a drill may have stopped one)."""
    for name, comp in drill_deployment.components.items():
        if not comp.running():
            drill_deployment.restart(name)
    return drill_deployment


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "test_drills.py" not in report.nodeid or (report.when != "call" and not report.failed):
        return
    name = report.nodeid.rsplit("::", 1)[-1]
    if report.failed:
        TALLY.failed.append(name)
    elif report.when == "call" and report.passed:
        TALLY.passed.append(name)
    elif report.when == "call" and report.skipped and hasattr(report, "wasxfail"):
        TALLY.notes.append(f"{name} xfailed")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.passed or TALLY.failed:
        terminalreporter.write_line(TALLY.line())
