"""Fixtures of the fault campaign: the session emulator and Airflow home, reset between scenarios, and the
summary line the campaign prints at the end of the pytest run (so it shows in CI's log)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from campaign.drive import Outcome, run_scenario
from campaign.scenarios import Scenario

#: Filled by the campaign tests, printed by pytest_terminal_summary.
SUMMARY: list[str] = []


class Tally:
    """Scenarios run, faults applied by kind, process events by kind, dataflow and lineage shapes, violations."""

    def __init__(self) -> None:
        self.scenarios = 0
        self.faults: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.violations = 0
        self.seconds = 0.0
        self.excluded: Counter[str] = Counter()
        self.shapes: Counter[str] = Counter()

    def add(self, outcome: Outcome) -> None:
        self.scenarios += 1
        self.faults.update(outcome.faults)
        self.events.update(outcome.events)
        self.violations += len(outcome.violations)
        self.seconds += outcome.seconds
        self.shapes.update(outcome.shape)

    def line(self, seed: int) -> str:
        def kinds(counter: Counter[str]) -> str:
            return ", ".join(f"{k}={v}" for k, v in sorted(counter.items())) or "none"

        excluded = f"; left out as known open: {kinds(self.excluded)}" if self.excluded else ""
        deferral = Counter({k.split(":", 1)[1]: v for k, v in self.shapes.items() if k.startswith("deferral:")})
        lineage = Counter({k: v for k, v in self.shapes.items() if k.startswith("upstream=")})
        return (f"fault campaign (seed {seed}): {self.scenarios} scenarios in {self.seconds:.0f} s; faults injected: "
                f"{kinds(self.faults)}; process events: {kinds(self.events)}; with dataflows: "
                f"{self.shapes['dataflows']} ({kinds(lineage)}); deferrable tasks waiting in the worker first: "
                f"{kinds(deferral)}{excluded}; "
                f"violations: {self.violations}")


@pytest.fixture
def campaign(emulator: Any, pbi_connection: str, clean_env: None, run_dag: Any) -> Callable[[Scenario], Outcome]:
    """``campaign(scenario) -> Outcome``: run one scenario against the (reset) session emulator, check I1-I5."""
    return lambda scenario: run_scenario(emulator, scenario, run_dag)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in SUMMARY:
        terminalreporter.write_line(line)
