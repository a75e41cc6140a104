"""Violations the campaign found that are still open, each with the scenario shapes that reach it.

While a bug is listed here, the CI campaign leaves out the scenarios of its shape (and says how many) so
that it keeps asserting 0 violations over everything else, and ``test_open_bugs.py`` keeps its shrunk
reproduction as a strict xfail. Fixing a bug makes that xfail pass, which fails the suite until the
entry below and the xfail mark are removed: the campaign then covers the shape again.
"""

from __future__ import annotations

from collections.abc import Callable

from campaign.scenarios import Scenario

AMBIGUOUS_POST_KINDS = {"drop_after", "drop", "error", "slow"}


def _posts_ambiguously(s: Scenario) -> bool:
    return any(f["endpoint"] in ("refresh_post", "*") and f["fault"] in AMBIGUOUS_POST_KINDS
               and f.get("status", 503) >= 500 for f in s.faults)


def _denied_status_reads(s: Scenario) -> bool:
    return any(f["endpoint"] in ("history", "details", "*") and f["fault"] in ("error", "expired_token")
               and f.get("status", 403) in (401, 403) and f.get("count", 1) >= 2 for f in s.faults) or \
        sum(f.get("count", 1) for f in s.faults if f["fault"] == "expired_token") >= 2


def _crashed_then_cleared(s: Scenario) -> bool:
    return "clear" in s.events and any(e in s.events for e in ("crash_mid_wait", "crash_after_post", "sigterm",
                                                                "crash_before_post"))


#: issue 9's numbered bugs (and findings beyond them) -> (what breaks, the scenarios that reach it)
KNOWN_OPEN: dict[str, tuple[str, Callable[[Scenario], bool]]] = {
    "bug 1": ("wait=False with more datasets than max_concurrency drops the rest",
              lambda s: not s.option("wait") and (s.option("max_concurrency") or 99) < len(s.datasets)),
    "bug 2": ("two 401/403 answers on status reads fail the watch (and a retry starts a second refresh)",
              _denied_status_reads),
    "bug 3": ("a refresh that ends between the last status call and the timeout is reported TimedOut",
              lambda s: s.option("timeout") is not None),
    "bug 4": ("clearing after an interrupted try resumes the old refresh", _crashed_then_cleared),
    "bug 5": ("an ambiguous POST is re-sent after a few history checks", _posts_ambiguously),
    "bug 6": ("a worker shutdown (SIGTERM) cancels healthy refreshes", lambda s: "sigterm" in s.events),
    "bug 7": ("a foreign refresh found after an ambiguous POST is adopted as the task's own",
              lambda s: any(f["fault"] == "race_drop" for f in s.faults)),
    "bug 8": ("a crash between the POST's answer and the ledger write starts a second refresh",
              lambda s: "crash_after_post" in s.events),
    "wait=False failures": ("with wait=False a refused POST is reported Failed but the task succeeds",
                            lambda s: not s.option("wait")),
}


def open_bugs(scenario: Scenario) -> list[str]:
    """The known-open bugs whose shape ``scenario`` has."""
    return [name for name, (_, matches) in KNOWN_OPEN.items() if matches(scenario)]
