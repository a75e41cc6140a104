"""Violations the campaign found that are still open, each with the scenario shapes that reach it.

While a bug is listed here, the CI campaign leaves out the scenarios of its shape (and says how many) so
that it keeps asserting 0 violations over everything else, and ``test_found_bugs.py`` keeps its shrunk
reproduction as a strict xfail. Fixing a bug makes that xfail pass, which fails the suite until the entry
below is removed: the campaign then covers the shape again.
"""

from __future__ import annotations

from collections.abc import Callable

from campaign.scenarios import Scenario


def _wait_false_retry(scenario: Scenario) -> bool:
    """wait=False with fewer slots than items (the try waits for slots, so it may see a failure) and a retry."""
    items = len(scenario.datasets) + sum(1 for i in range(len(scenario.dataflows)) if scenario.dataflow(i)["selected"])
    slots = scenario.option("max_concurrency")
    return not scenario.option("wait") and slots is not None and slots < items and scenario.option("retries") >= 1


def _upstream_failure_retried(scenario: Scenario) -> bool:
    """A lineage-ordered task whose dataflow may fail, with a retry."""
    failing = any(scenario.dataflow(i)["outcome"] != "Success" for i in range(len(scenario.dataflows))) or any(
        f["endpoint"] == "dataflow_refresh" and f["fault"] == "error" for f in scenario.faults)
    return scenario.option("upstream") != "ignore" and scenario.option("retries") >= 1 and failing


def _attach_without_waiting(scenario: Scenario) -> bool:
    """wait=False and if_running='attach' while another caller's refresh may run (busy, or a race on the POST)."""
    foreign = any(d.get("busy") for d in [*scenario.datasets, *scenario.dataflows]) or any(
        f["fault"] in ("race", "race_drop") for f in scenario.faults)
    return not scenario.option("wait") and scenario.option("if_running") == "attach" and foreign


#: open bug -> (what breaks, the scenarios that reach it); empty while none is open
KNOWN_OPEN: dict[str, tuple[str, Callable[[Scenario], bool]]] = {
    "wait=False retry forgets the refreshes its failed try started": (
        ("a wait=False try that fails (a refresh it saw end Failed while waiting for a slot) carries over only the "
        "completed results (RefreshRun.carried_over keeps is_success ones), so the retry does not know the refreshes "
        "that try started and reported NotStarted: it refreshes them again (I1) or reports them Skipped as someone "
        "else's (I3)"), _wait_false_retry),
    "an item skipped for its failed upstream counts as completed on retry": (
        ("a result Skipped because an item it reads failed ('not refreshed: it reads ...') is carried over to the "
         "next try as completed (RefreshRun.carried_over keeps every is_success result, and Skipped is a success), "
         "so the retry reports it 'completed in try 1' though it was never refreshed, and does not refresh it even "
         "when its upstream now succeeds (I3)"), _upstream_failure_retried),
    "wait=False reports an attached refresh as NotStarted": (
        ("with wait=False and if_running='attach', a refresh another caller runs (found when planning, or when the "
         "POST is refused as already running) is reported NotStarted with its id and no reason, as if the task had "
         "started it (report.finish turns every watched handle into NotStarted, attached ones too) (I3)"),
        _attach_without_waiting),
}


def open_bugs(scenario: Scenario) -> list[str]:
    """The known-open bugs whose shape ``scenario`` has."""
    return [name for name, (_, matches) in KNOWN_OPEN.items() if matches(scenario)]
