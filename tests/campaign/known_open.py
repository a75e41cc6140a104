"""Violations the campaign found that are still open, each with the scenario shapes that reach it.

While a bug is listed here, the CI campaign leaves out the scenarios of its shape (and says how many) so
that it keeps asserting 0 violations over everything else, and ``test_found_bugs.py`` keeps its shrunk
reproduction as a strict xfail (unless its timing cannot be pinned down, which its entry says). Fixing a bug
makes that xfail pass, which fails the suite until the entry below is removed: the campaign then covers the shape
again.
"""

from __future__ import annotations

from collections.abc import Callable

from campaign.scenarios import Scenario

#: open bug -> (what breaks, the scenarios that reach it); empty while none is open
KNOWN_OPEN: dict[str, tuple[str, Callable[[Scenario], bool]]] = {}


def open_bugs(scenario: Scenario) -> list[str]:
    """The known-open bugs whose shape ``scenario`` has."""
    return [name for name, (_, matches) in KNOWN_OPEN.items() if matches(scenario)]
