"""When to ask Power BI for a refresh's status next. Pure: no I/O, no clock of its own.

A refresh with history is expected to last about as long as its recent successful refreshes
(their median). For a long expected duration the schedule checks once early (a small fraction of
it, to catch refreshes that fail at once), doubles the delay while far from the end, covers most of
the remaining gap in long steps, polls densely from shortly before the expected end, then backs off
slowly if the refresh runs late. A short expected duration goes straight to the dense window.
Without history the delay grows with the time already waited (a fixed fraction of it, plus a few
seconds' lead), so the detection delay stays proportional to the refresh's own length.

Both waiters (worker polling and the deferrable trigger) use :class:`PollSchedule` and
:class:`WatchPlan`, so they behave the same way and are unit-tested with a simulated clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

#: Without history (and once a refresh runs late), the next delay is this fraction of the time waited.
GROWTH = 0.25
#: Without history, the time waited counts this many seconds more: the first calls come about 1 s apart
#: rather than at every minimum interval (fewer calls and no later detection for short refreshes).
NO_HISTORY_LEAD = 4.0
#: With history, polls around the expected end are this fraction of the expected duration apart.
DENSE_FRACTION = 1 / 300
#: The dense window opens this many dense intervals before the expected end...
DENSE_LEAD = 2
#: ...and lasts until this many dense intervals after it; later polls back off.
DENSE_TAIL = 4
#: Expected durations from this long (seconds) get an early check and geometric growth before the long steps.
LONG_EXPECTED = 60.0
#: The early check of a long refresh comes after this fraction of its expected duration.
EARLY_FRACTION = 0.05
#: Each long step before the dense window covers at most this fraction of the remaining gap.
SLEEP_FRACTION = 0.7
#: How long a standard refresh may stay absent from the history before it counts as lost (seconds).
APPEARANCE_GRACE = 180.0


def expected_duration(durations: Iterable[float | None]) -> float | None:
    """Median of the positive durations (seconds) of recent successful refreshes, or None without any."""
    import statistics  # local: keeps DAG-parse imports light

    values = [d for d in durations if d is not None and d > 0]
    return float(statistics.median(values)) if values else None


@dataclasses.dataclass(frozen=True)
class PollSchedule:
    """The delay before the next status call of one refresh.

    :param min_interval: shortest delay between two status calls (seconds).
    :param max_interval: longest delay between two status calls (seconds).
    :param expected: expected duration from history (seconds), or None when unknown.
    :param appearance_grace: how long a standard refresh may be missing from the history (seconds).
    """

    min_interval: float = 1.0
    max_interval: float = 600.0
    expected: float | None = None
    appearance_grace: float = APPEARANCE_GRACE

    def __post_init__(self) -> None:
        if not self.min_interval > 0:
            msg = f"Invalid poll min_interval {self.min_interval!r}: expected a number of seconds > 0."
            raise ValueError(msg)
        if not self.max_interval >= self.min_interval:
            msg = (
                f"Invalid poll max_interval {self.max_interval!r}: "
                f"expected seconds >= min_interval ({self.min_interval})."
            )
            raise ValueError(msg)

    def _clamp(self, delay: float) -> float:
        return min(self.max_interval, max(self.min_interval, delay))

    @property
    def dense_interval(self) -> float:
        """Polling interval around the expected end."""
        if self.expected is None:
            return self.min_interval
        return self._clamp(self.expected * DENSE_FRACTION)

    def next_delay(self, elapsed: float, *, retry_after: float | None = None) -> float:
        """Seconds to wait before the next status call, ``elapsed`` seconds after the refresh started.

        :param retry_after: a ``Retry-After`` Power BI asked for; the delay is never shorter.
        """
        elapsed = max(0.0, elapsed)
        if self.expected is None:
            delay = self._clamp((elapsed + NO_HISTORY_LEAD) * GROWTH)
        else:
            dense = self.dense_interval
            opens = self.expected - DENSE_LEAD * dense
            if elapsed < opens:
                delay = self._approach(elapsed, opens, dense)
            elif elapsed < self.expected + DENSE_TAIL * dense:
                delay = dense
            else:
                # Late: back off with the overrun, still bounded.
                delay = self._clamp(dense + (elapsed - self.expected) * GROWTH)
        if retry_after is not None and retry_after > delay:
            delay = float(retry_after)
        return delay

    def _approach(self, elapsed: float, opens: float, dense: float) -> float:
        """Delay while the dense window (opening at ``opens``) is still ahead."""
        assert self.expected is not None
        gap = opens - elapsed
        step = gap
        if self.expected >= LONG_EXPECTED:
            # Early check, then doubling (each delay equals the time waited), never more than most of the gap.
            step = min(max(self.expected * EARLY_FRACTION, elapsed), gap * SLEEP_FRACTION)
        if gap - step < DENSE_LEAD * dense:
            step = gap  # close enough: go straight to the dense window
        return self._clamp(step)

    def appearance_expired(self, elapsed: float) -> bool:
        """Whether a standard refresh still missing from the history after ``elapsed`` seconds is lost."""
        return elapsed > max(self.appearance_grace, 3 * self.min_interval)


@dataclasses.dataclass
class WatchPlan:
    """Due times of the status calls of several refreshes, each on its own :class:`PollSchedule`.

    Times are plain floats from whatever clock the waiter uses (``time.monotonic`` or a simulated one).

    :param schedules: refresh id -> its schedule.
    :param started: refresh id -> clock time the refresh was requested.
    """

    schedules: Mapping[str, PollSchedule]
    started: Mapping[str, float]
    due: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, schedule in self.schedules.items():
            start = self.started[key]
            self.due.setdefault(key, start + schedule.next_delay(0.0))

    def add(self, key: str, schedule: PollSchedule, started: float) -> None:
        """Start watching one more refresh (no-op if it is already watched)."""
        if key in self.due:
            return
        self.schedules = {**self.schedules, key: schedule}
        self.started = {**self.started, key: started}
        self.due[key] = started + schedule.next_delay(0.0)

    @property
    def pending(self) -> list[str]:
        return list(self.due)

    def next_due(self) -> float | None:
        """Clock time of the earliest pending status call, or None when nothing is pending."""
        return min(self.due.values()) if self.due else None

    def due_now(self, now: float) -> list[str]:
        """Refresh ids whose status call is due at ``now``."""
        return [key for key, when in self.due.items() if when <= now]

    def observed(self, key: str, now: float, *, terminal: bool, retry_after: float | None = None) -> None:
        """Record a status call: drop the refresh when terminal, else schedule its next call."""
        if terminal:
            self.due.pop(key, None)
            return
        elapsed = now - self.started[key]
        self.due[key] = now + self.schedules[key].next_delay(elapsed, retry_after=retry_after)

    def elapsed(self, key: str, now: float) -> float:
        return now - self.started[key]


__all__ = ["APPEARANCE_GRACE", "PollSchedule", "WatchPlan", "expected_duration"]
