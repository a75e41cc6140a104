"""Shrunk campaign reproductions of every violation the campaign found, one per bug, kept as regression tests.

A bug still open is listed in ``known_open.KNOWN_OPEN`` and its case here is a strict xfail: when it is fixed
the case passes, the suite fails on the XPASS, and the fix removes the entry (the campaign then covers its
shape again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from campaign.drive import Outcome
from campaign.known_open import KNOWN_OPEN
from campaign.scenarios import Scenario

pytestmark = pytest.mark.integration

CASES: dict[str, dict[str, Any]] = {
    "bug 1": {"datasets": [{"name": "Sales"}, {"name": "Finance"}, {"name": "Stock"}],
              "options": {"wait": False, "max_concurrency": 2}},
    "bug 2": {"datasets": [{"name": "Sales", "duration": 0.4, "enhanced": True}],
              "options": {"retries": 1},
              "faults": [{"endpoint": "details", "fault": "error", "status": 403, "count": 2}]},
    "bug 3": {"datasets": [{"name": "Sales", "duration": 0.3}],
              "options": {"timeout": 0.45, "poll": [0.25, 1.0]}},
    "bug 4": {"datasets": [{"name": "Sales", "duration": 0.5}],
              "events": ["crash_mid_wait", "clear"]},
    "bug 5": {"datasets": [{"name": "Sales", "duration": 0.2, "history_lag": 0.5}],
              "faults": [{"endpoint": "refresh_post", "fault": "drop_after", "count": 1}]},
    "bug 6": {"datasets": [{"name": "Sales", "duration": 0.5, "enhanced": True}],
              "options": {"retries": 1}, "events": ["sigterm"]},
    "bug 7": {"datasets": [{"name": "Sales", "duration": 0.3}],
              "faults": [{"endpoint": "refresh_post", "fault": "race_drop", "refresh_type": "ViaApi",
                          "duration": 0.2, "count": 1}]},
    "bug 8": {"datasets": [{"name": "Sales", "duration": 0.3}],
              "options": {"retries": 1}, "events": ["crash_after_post"]},
    "deferred lost request into a foreign refresh": {
        "datasets": [{"name": "Sales", "duration": 0.3}], "options": {"deferrable": True, "if_running": "attach"},
        "faults": [{"endpoint": "refresh_post", "fault": "race_drop", "refresh_type": "OnDemand", "duration": 0.4,
                    "count": 1}]},
    "timeout before the history lists the refresh": {
        "datasets": [{"name": "Sales", "duration": 0.08, "history_lag": 0.53}],
        "options": {"timeout": 0.31, "retries": 0}},
    "if_running=fail after a clear while the earlier refresh runs": {
        "datasets": [{"name": "Sales", "duration": 0.56}], "options": {"wait": False, "if_running": "fail"},
        "events": ["clear"]},
    "wait=False failures": {"datasets": [{"name": "Sales"}], "options": {"wait": False},
                            "faults": [{"endpoint": "refresh_post", "fault": "error", "status": 400, "count": 1}]},
    "wait=False retry forgets the refreshes its failed try started": {
        "datasets": [{"name": "Finance", "duration": 0.1, "outcome": "Failed"}, {"name": "Stock", "duration": 0.05}],
        "options": {"wait": False, "max_concurrency": 1, "retries": 1}},
    "an item skipped for its failed upstream counts as completed on retry": {
        "datasets": [{"name": "Sales", "duration": 0.1, "reads": ["Ingest ETL"]}],
        "dataflows": [{"name": "Ingest ETL", "duration": 0.1, "outcome": "Failed"}],
        "options": {"retries": 1, "upstream": "order"}},
    "wait=False reports an attached refresh as NotStarted": {
        "datasets": [{"name": "Sales", "duration": 0.1}], "options": {"wait": False, "if_running": "attach"},
        "faults": [{"endpoint": "refresh_post", "fault": "race", "refresh_type": "ViaApi", "duration": 0.3,
                    "count": 1}]},
    "wait=False leaves a dataflow blocked by a foreign refresh without a result": {
        "datasets": [{"name": "Sales", "duration": 0.24}], "dataflows": [{"name": "Ingest ETL", "duration": 0.06}],
        "options": {"wait": False},
        "faults": [{"endpoint": "dataflow_refresh", "fault": "race", "refresh_type": "OnDemand", "duration": 0.16,
                    "count": 1}]},
    "a retry reuses the other caller's refresh an earlier try attached to and saw complete": {
        "datasets": [{"name": "Finance", "duration": 0.59}, {"name": "Stock", "duration": 0.14, "past": 0.06}],
        "options": {"if_running": "attach", "retries": 1},
        "faults": [{"endpoint": "refresh_post", "fault": "race_drop", "refresh_type": "Scheduled", "duration": 0.14,
                    "count": 3}]},
    "wait=False with a timeout succeeds although an item timed out before it could start": {
        "datasets": [{"name": "Sales", "duration": 0.24}, {"name": "Finance", "duration": 0.22}],
        "dataflows": [{"name": "Ingest ETL", "duration": 0.06}],
        "options": {"wait": False, "max_concurrency": 2, "timeout": 0.35, "retries": 0}},
    "wait=False with a timeout loses an item still waiting for another caller's transaction": {
        "datasets": [{"name": "Finance", "duration": 0.22}], "dataflows": [{"name": "Ingest ETL", "duration": 0.06}],
        "options": {"wait": False, "timeout": 0.35, "retries": 0},
        "faults": [{"endpoint": "dataflow_refresh", "fault": "race", "refresh_type": "OnDemand", "duration": 1.0,
                    "count": 1}]},
    "upstream order attaches to another caller's refresh of a model whose upstream dataflow then fails": {
        "datasets": [{"name": "Sales", "duration": 0.1, "busy": 0.25, "reads": ["Ingest ETL"]}],
        "dataflows": [{"name": "Ingest ETL", "duration": 0.32, "outcome": "Failed"}],
        "options": {"upstream": "order", "if_running": "attach", "retries": 0}},
}


def _case(name: str) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=f"open: {name}: {KNOWN_OPEN[name][0]}")] \
        if name in KNOWN_OPEN else []
    return pytest.param(name, marks=marks, id=name.replace(" ", "_").replace("=", "_"))


@pytest.mark.parametrize("name", [_case(name) for name in CASES])
def test_found_bug_reproduction_keeps_every_promise(campaign: Callable[[Scenario], Outcome], name: str) -> None:
    """The shrunk scenario of each bug the campaign found keeps I1-I5 (xfail while the bug is open)."""
    outcome = campaign(Scenario.from_dict({**CASES[name], "family": name}))
    assert not outcome.violations, "\n".join(map(str, outcome.violations))
