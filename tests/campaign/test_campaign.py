"""The model-based fault campaign: random scenarios of faults, process events and refresh outcomes, each run
for real (``@powerbi_refresh`` under ``dag.test()`` against the emulator), each checked against the task's
promises I1-I5 (:mod:`pbi_taskflow.testing.invariants`).

CI runs a fixed seed and budget (``CAMPAIGN_SCENARIOS`` scenarios run); ``make soak`` runs thousands with ``SOAK_SEED`` / ``SOAK_SCENARIOS``.
Environment: ``CAMPAIGN_SEED``, ``CAMPAIGN_SCENARIOS``, ``CAMPAIGN_ONLY`` (one scenario index),
``CAMPAIGN_SHRINK`` (how many failures to shrink, default 3), ``CAMPAIGN_KNOWN_OPEN=1`` (also run the
scenarios of the bugs listed in ``known_open.py``, to see them fail).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from campaign.conftest import SUMMARY, Tally
from campaign.drive import Outcome
from campaign.known_open import open_bugs
from campaign.scenarios import Scenario, scenarios, shrink

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("CAMPAIGN_SEED", "20260509"))
COUNT = int(os.environ.get("CAMPAIGN_SCENARIOS", "160"))
SHRINK = int(os.environ.get("CAMPAIGN_SHRINK", "3"))
#: seconds spent shrinking at most (CI budget)
SHRINK_BUDGET = float(os.environ.get("CAMPAIGN_SHRINK_SECONDS", "90"))


def repro(seed: int, index: int, scenario: Scenario, violations: list[Any]) -> str:
    """A ready-to-paste regression test for a failing scenario."""
    body = scenario.literal().replace("\n", "\n" + " " * 8)
    broken = "; ".join(str(v) for v in violations)
    return (
        f"# seed {seed}, scenario {index}, shrunk: {broken}\n"
        f"def test_campaign_seed_{seed}_scenario_{index}(campaign):\n"
        f"    outcome = campaign(Scenario.from_dict(\n        {body}))\n"
        f"    assert not outcome.violations, outcome.violations\n"
    )


def test_campaign_scenarios_keep_every_promise(campaign: Callable[[Scenario], Outcome]) -> None:
    """Every scenario of the seeded budget keeps I1-I5; failures are shrunk and printed as regression tests."""
    tally = Tally()
    failures: list[tuple[int, Scenario, Outcome]] = []
    only = os.environ.get("CAMPAIGN_ONLY")
    include_open = os.environ.get("CAMPAIGN_KNOWN_OPEN", "") not in ("", "0")
    for index, scenario in scenarios(SEED):
        if tally.scenarios >= COUNT or (only is not None and index > int(only)):
            break
        if only is not None and str(index) != only:
            continue
        known = open_bugs(scenario)
        if known and not include_open and only is None:
            tally.excluded.update(known[:1])
            continue
        outcome = campaign(scenario)
        tally.add(outcome)
        if outcome.violations:
            failures.append((index, scenario, outcome))
            print(f"scenario {index} ({scenario.family}; events {outcome.events}; known open {known}): "
                  + "; ".join(map(str, outcome.violations)))
    reports = []
    deadline = time.monotonic() + SHRINK_BUDGET
    for index, scenario, outcome in failures[:SHRINK]:
        wanted = {v.invariant for v in outcome.violations}

        def still_fails(candidate: Scenario, wanted: set[str] = wanted) -> bool:
            if time.monotonic() > deadline:
                return False
            return bool(wanted & {v.invariant for v in campaign(candidate).violations})

        small = shrink(scenario, still_fails)
        reports.append(repro(SEED, index, small, campaign(small).violations or outcome.violations))
    SUMMARY.append(tally.line(SEED))
    print(SUMMARY[-1])
    assert not failures, (
        f"{len(failures)} of {tally.scenarios} scenarios broke the refresh task's promises "
        f"(scenarios {[i for i, _, _ in failures]}); shrunk reproductions:\n\n" + "\n\n".join(reports)
    )
