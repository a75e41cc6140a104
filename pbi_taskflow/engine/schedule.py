"""When to ask Power BI for a refresh's status next. Pure: no I/O, no clock of its own.

Every refresh, with or without history, is checked at most :data:`EARLY_GAP` seconds apart during its
first :data:`EARLY_WINDOW` seconds, so a refresh that fails or is cancelled early is seen quickly.

Without history nothing tells how long the refresh will take. The first delay is the minimum
interval and each next one is :data:`RAMP` times the time already waited (capped at the early gap),
so a refresh of a few seconds is seen within about twice its length; a refresh that others wait for
(lineage order) ramps by :data:`GATING_RAMP`, so it is seen within half its length. After the early window the
delay is :data:`NO_HISTORY_STEP`, so a refresh of any length is seen within that long of its end
(half of it on average); once :data:`NO_HISTORY_GROWTH` of the time waited is longer, the delay is
that, so a very long refresh costs a few more calls per doubling of its length.

With history, a refresh is expected to last about as long as its recent successful refreshes (their
median). Polls come every *dense interval* (1/300 of the expected duration, at least the minimum
interval) around the expected end. When that end falls after the early window, the first dense poll
comes half a dense interval after it: a refresh lasting as long as usual is seen by that poll, and
no call is spent just before its end. A shorter refresh, whose end falls inside the early window
where calls are a few seconds apart anyway, is polled densely from two intervals before its expected
end (short refreshes often end a second early). Until the first dense poll the schedule takes equal
steps, as few as reach it without a delay longer than the early gap (in the early window) or the
maximum interval (after it). A refresh that runs late is polled densely for a few more intervals,
then with a delay that grows with the overrun.

Both waiters (worker polling and the deferrable trigger) use :class:`PollSchedule` and
:class:`WatchPlan`, so they behave the same way and are unit-tested with a simulated clock.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from pbi_taskflow.client.durations import APPEARANCE_GRACE

#: Every refresh's first seconds, polled at most :data:`EARLY_GAP` apart with or without history.
EARLY_WINDOW = 120.0
#: Longest delay during the early window: a refresh failing or cancelled then is seen within this
#: many seconds plus the status call's own time.
EARLY_GAP = 14.0
#: Without history, each early delay is this many times the time already waited (after a first delay
#: of the minimum interval), up to :data:`EARLY_GAP`.
RAMP = 2.0
#: The same for a refresh that other refreshes of the task wait for (a lineage-ordered refresh): its end is
#: seen within half the time it took, in the early window, so each level of a chain starts soon after the last.
GATING_RAMP = 0.5
#: Without history, the delay after the early window (seconds).
NO_HISTORY_STEP = 120.0
#: Without history, the delay is at least this fraction of the time waited (very long refreshes).
NO_HISTORY_GROWTH = 1 / 40
#: With history, polls around the expected end are this fraction of the expected duration apart.
DENSE_FRACTION = 1 / 300
#: The first dense poll comes this many dense intervals after the expected end...
DENSE_OFFSET = 0.5
#: ...or this many dense intervals before it when the expected end falls inside the early window...
DENSE_LEAD = 2
#: ...and dense polls last until this many dense intervals after it; later polls back off.
DENSE_TAIL = 4
#: Once a refresh with history runs late, the delay grows by this fraction of the overrun.
GROWTH = 0.25

#: Seconds under which a remaining gap counts as reached (float sums of steps are not exact).
_REACHED = 1e-6


def expected_duration(durations: Iterable[float | None]) -> float | None:
    """Median of the positive durations (seconds) of recent successful refreshes, or None without any."""
    import statistics  # local: keeps DAG-parse imports light

    values = [d for d in durations if d is not None and d > 0]
    return float(statistics.median(values)) if values else None


@dataclasses.dataclass(frozen=True)
class PollSchedule:
    """The delay before the next status call of one refresh.

    :param min_interval: shortest delay between two status calls (seconds); it wins over
        :data:`EARLY_GAP` when longer.
    :param max_interval: longest delay between two status calls (seconds).
    :param expected: expected duration from history (seconds), or None when unknown.
    :param appearance_grace: how long a standard refresh may be missing from the history (seconds).
    :param ramp: without history, each early delay is this many times the time already waited (:data:`RAMP`, or
        :data:`GATING_RAMP` for a refresh other refreshes wait for).
    """

    min_interval: float = 1.0
    max_interval: float = 600.0
    expected: float | None = None
    appearance_grace: float = APPEARANCE_GRACE
    ramp: float = RAMP

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
        delay = self._no_history(elapsed) if self.expected is None else self._with_history(elapsed, self.expected)
        if elapsed < EARLY_WINDOW:
            delay = min(delay, EARLY_GAP)
        delay = self._clamp(delay)
        if retry_after is not None and retry_after > delay:
            delay = float(retry_after)
        return delay

    def _no_history(self, elapsed: float) -> float:
        if elapsed < EARLY_WINDOW:
            return self.ramp * elapsed
        return max(NO_HISTORY_STEP, elapsed * NO_HISTORY_GROWTH)

    def _with_history(self, elapsed: float, expected: float) -> float:
        dense = self.dense_interval
        first_dense = expected + DENSE_OFFSET * dense
        if first_dense < EARLY_WINDOW:
            first_dense = max(0.0, expected - DENSE_LEAD * dense)
        gap = first_dense - elapsed
        if gap > _REACHED:
            # Equal steps, as few as reach the first dense poll without a delay over the limit.
            limit = EARLY_GAP if elapsed < EARLY_WINDOW else self.max_interval
            return gap / math.ceil(gap / limit - _REACHED)
        if elapsed < expected + DENSE_TAIL * dense:
            return dense
        # Late: back off with the overrun, still bounded.
        return dense + (elapsed - expected) * GROWTH

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


__all__ = ["PollSchedule", "WatchPlan", "expected_duration"]
