"""Unit tests for pbi_taskflow.engine.schedule, driven by a simulated clock."""

from __future__ import annotations

import itertools
import statistics

import pytest

from pbi_taskflow.engine.schedule import (
    DENSE_FRACTION,
    DENSE_OFFSET,
    EARLY_GAP,
    EARLY_WINDOW,
    NO_HISTORY_GROWTH,
    NO_HISTORY_STEP,
    RAMP,
    PollSchedule,
    WatchPlan,
    expected_duration,
)

HOUR = 3600.0
#: Expected durations from history (None: no history) that every schedule-wide property is checked on.
EXPECTATIONS = [None, 10.0, 30.0, 100.0, 600.0, HOUR, 86_400.0]


def simulate(schedule: PollSchedule, ends_at: float) -> tuple[int, float]:
    """Poll a refresh that ends at ``ends_at``; return (status calls, detection delay)."""
    times = poll_times(schedule, ends_at)
    return len(times), times[-1] - ends_at


def poll_times(schedule: PollSchedule, ends_at: float) -> list[float]:
    """Clock times of the status calls of a refresh that ends at ``ends_at``, up to the one that sees it."""
    now, times = schedule.next_delay(0.0), []
    while True:
        times.append(now)
        if now >= ends_at:
            return times
        now += schedule.next_delay(now)


def seconds(low: float, high: float, step: float = 1.0) -> list[float]:
    """Every ``step`` seconds from ``low`` to ``high`` (both included), plus a quarter step off the grid."""
    count = round((high - low) / step)
    return [low + k * step + 0.25 * step for k in range(count)] + [high]


def test_expected_duration_is_the_median_of_positive_durations() -> None:
    """History durations give their median; missing or zero durations are ignored."""
    assert expected_duration([10.0, None, 30.0, 0.0, 20.0]) == 20.0
    assert expected_duration([]) is None


# --- the early window: every refresh, with or without history --------------------------------------


@pytest.mark.parametrize("expected", EXPECTATIONS)
def test_every_delay_in_the_early_window_is_at_most_the_early_gap(expected: float | None) -> None:
    """During a refresh's first 2 minutes no delay is longer than the early gap (14 s), with or without history."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=expected)
    for elapsed in seconds(0.0, EARLY_WINDOW, 0.1)[:-1]:
        assert schedule.next_delay(elapsed) <= EARLY_GAP


@pytest.mark.parametrize("expected", EXPECTATIONS)
def test_a_refresh_failing_in_its_first_two_minutes_is_seen_within_the_early_gap(expected: float | None) -> None:
    """Whenever in its first 120 s a refresh fails or is cancelled, the next status call is at most 14 s later."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=expected)
    for ends_at in seconds(0.0, EARLY_WINDOW, 0.25):
        _, delay = simulate(schedule, ends_at)
        assert delay <= EARLY_GAP, ends_at


@pytest.mark.parametrize("expected", [None, HOUR])
def test_a_long_poll_interval_wins_over_the_early_gap(expected: float | None) -> None:
    """A poll_interval longer than the early gap is kept: no delay is ever shorter than it."""
    schedule = PollSchedule(min_interval=30, max_interval=600, expected=expected)
    assert schedule.next_delay(0) == 30
    assert poll_times(schedule, 100)[:4] == [30, 60, 90, 120]


# --- without history ----------------------------------------------------------------------------------


def test_without_history_the_first_delays_grow_from_the_minimum_interval() -> None:
    """The first call comes after the minimum interval; each next delay is twice the time waited, up to 14 s."""
    schedule = PollSchedule(min_interval=1, max_interval=600)
    assert poll_times(schedule, 40) == [1, 3, 9, 23, 37, 51]
    assert schedule.next_delay(0) == 1
    assert schedule.next_delay(5) == RAMP * 5


@pytest.mark.parametrize("min_interval", [0.1, 1.0])
def test_without_history_a_short_refresh_is_seen_within_twice_its_length(min_interval: float) -> None:
    """A refresh ending in its first 2 minutes is seen within twice its length (and 14 s) after the minimum interval."""
    schedule = PollSchedule(min_interval=min_interval, max_interval=600)
    for ends_at in seconds(min_interval, EARLY_WINDOW, 0.1):
        _, delay = simulate(schedule, ends_at)
        assert delay <= min(RAMP * ends_at, EARLY_GAP), ends_at


def test_without_history_the_delay_after_the_early_window_is_two_minutes() -> None:
    """After the early window the delay is 2 minutes until 1/40 of the time waited is longer, clamped to the max."""
    schedule = PollSchedule(min_interval=1, max_interval=600)
    assert schedule.next_delay(EARLY_WINDOW) == NO_HISTORY_STEP
    assert schedule.next_delay(HOUR) == NO_HISTORY_STEP
    assert schedule.next_delay(4 * HOUR) == 4 * HOUR * NO_HISTORY_GROWTH
    assert schedule.next_delay(10 * HOUR) == 600


def test_without_history_a_refresh_ending_within_the_hour_costs_at_most_40_calls() -> None:
    """Without history a refresh ending after 2 minutes and by 1 h costs at most 40 status calls."""
    schedule = PollSchedule(min_interval=1, max_interval=600)
    assert max(simulate(schedule, ends_at)[0] for ends_at in seconds(EARLY_WINDOW, HOUR)) <= 40


def test_without_history_a_refresh_near_one_hour_is_seen_within_a_minute_on_median() -> None:
    """For every end second from 50 to 70 minutes: median detection delay at most 60 s, longest at most 2 minutes.

    The longest delay cannot be a minute within 40 calls without aligning the schedule to one duration:
    seeing every end within 60 s takes a call every 60 s, about 58 calls for the first hour.
    """
    schedule = PollSchedule(min_interval=1, max_interval=600)
    delays = [simulate(schedule, ends_at)[1] for ends_at in seconds(50 * 60, 70 * 60)]
    assert statistics.median(delays) <= 60
    assert max(delays) <= NO_HISTORY_STEP


@pytest.mark.parametrize(("ends_at", "max_calls"), [(600.0, 15), (2 * HOUR, 70), (6 * HOUR, 120)])
def test_without_history_calls_grow_slowly_for_long_refreshes(ends_at: float, max_calls: int) -> None:
    """Without history 10 min / 2 h / 6 h (the default timeout) cost a bounded number of calls."""
    calls, delay = simulate(PollSchedule(min_interval=1, max_interval=600), ends_at)
    assert calls <= max_calls
    assert delay <= max(NO_HISTORY_STEP, ends_at * NO_HISTORY_GROWTH * 1.1)


# --- with history ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ends_at", [9.5, 10.0, 10.5, 11.0, 11.5])
def test_ten_second_refresh_with_history_costs_few_calls_and_is_seen_within_a_second(ends_at: float) -> None:
    """A 10 s refresh with 10 s of history, ending a little early or late, costs at most 6 calls, seen within 1 s."""
    calls, delay = simulate(PollSchedule(min_interval=1, max_interval=600, expected=10), ends_at)
    assert calls <= 6
    assert delay <= 1


def test_short_expected_duration_steps_evenly_to_the_dense_window() -> None:
    """30 s of history: equal steps of at most 14 s, then dense polls from two intervals before the expected end."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=30)
    assert poll_times(schedule, 31) == pytest.approx([14, 28, 29, 30, 31])


def test_an_expected_end_after_the_early_window_gets_no_dense_poll_before_it() -> None:
    """Past the early window the first dense poll comes half a dense interval after the expected end."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=300)
    times = poll_times(schedule, 300)
    assert times[-1] == pytest.approx(300 + DENSE_OFFSET * schedule.dense_interval)
    assert times[-2] <= EARLY_WINDOW + EARLY_GAP


@pytest.mark.parametrize("min_interval", [1.0, 5.0])
def test_ten_minute_refresh_with_history(min_interval: float) -> None:
    """A 10 min refresh lasting as long as its history costs at most 12 calls and is seen within a dense interval."""
    schedule = PollSchedule(min_interval=min_interval, max_interval=600, expected=600)
    calls, delay = simulate(schedule, 600)
    assert calls <= 12
    assert delay <= schedule.dense_interval


@pytest.mark.parametrize("min_interval", [1.0, 5.0])
@pytest.mark.parametrize("late_by", [0.0, 1.0, 6.0])
def test_one_hour_refresh_with_history_costs_15_calls_and_is_seen_within_seconds(
    min_interval: float, late_by: float
) -> None:
    """An hour-long refresh ending up to half a dense interval (6 s) after its history's duration: 15 calls, seen within 12 s."""
    schedule = PollSchedule(min_interval=min_interval, max_interval=600, expected=HOUR)
    calls, delay = simulate(schedule, HOUR + late_by)
    assert calls <= 15
    assert delay <= schedule.dense_interval


@pytest.mark.parametrize("late_by", [7.0, 18.0, 30.0])
def test_one_hour_refresh_a_little_late_is_seen_within_a_dense_interval(late_by: float) -> None:
    """Up to 30 s later than its history, an hour-long refresh costs at most 17 calls and is seen within 12 s."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    calls, delay = simulate(schedule, HOUR + late_by)
    assert calls <= 17
    assert delay <= schedule.dense_interval


def test_long_refresh_steps_evenly_from_the_early_window_to_just_after_its_expected_end() -> None:
    """With an hour of history: checks 14 s apart or less for 2 minutes, then six equal steps of at most 600 s."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    dense = schedule.dense_interval
    assert dense == HOUR * DENSE_FRACTION
    times = poll_times(schedule, HOUR)
    early = [t for t in times if t <= EARLY_WINDOW + EARLY_GAP]
    assert len(early) == 9
    assert early[-1] >= EARLY_WINDOW
    steps = [b - a for a, b in itertools.pairwise(times[8:])]
    assert len(steps) == 6
    assert max(steps) <= 600
    assert max(steps) - min(steps) == pytest.approx(0, abs=1e-6)
    assert times[-1] == pytest.approx(HOUR + DENSE_OFFSET * dense)


def test_dense_polls_follow_the_expected_end_then_back_off() -> None:
    """From half a dense interval after the expected end, calls are one dense interval apart for four intervals."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    dense = schedule.dense_interval
    times = poll_times(schedule, HOUR + 5 * dense)
    assert times[-6:-1] == pytest.approx([HOUR + (k + DENSE_OFFSET) * dense for k in range(5)])
    assert times[-1] - times[-2] > dense


@pytest.mark.parametrize(("fails_at", "seen_within"), [(30.0, EARLY_GAP), (600.0, 600.0), (1800.0, 600.0)])
def test_early_failure_of_a_long_refresh_is_seen_soon(fails_at: float, seen_within: float) -> None:
    """A refresh expected to last an hour that fails early is seen within the early gap or one max interval."""
    calls, delay = simulate(PollSchedule(min_interval=1, max_interval=600, expected=HOUR), fails_at)
    assert delay <= seen_within
    assert calls <= 12


@pytest.mark.parametrize("ends_at", [2400.0, 3300.0, 3540.0])
def test_early_end_is_seen_within_one_long_step(ends_at: float) -> None:
    """A refresh ending before its expected end is seen within one long step, for no more than 15 calls."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    calls, delay = simulate(schedule, ends_at)
    assert delay <= 600
    assert calls <= 15


@pytest.mark.parametrize("ends_at", [3900.0, 5400.0, 2 * HOUR])
def test_late_refresh_backs_off_in_proportion_to_its_overrun(ends_at: float) -> None:
    """A refresh running past its expected end is seen within a dense interval plus about a third of the overrun."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    calls, delay = simulate(schedule, ends_at)
    assert delay <= schedule.dense_interval + 0.35 * (ends_at - HOUR)
    assert calls <= 40


# --- bounds, Retry-After, appearance, plan ----------------------------------------------------------------


@pytest.mark.parametrize("expected", EXPECTATIONS)
def test_delays_stay_within_bounds(expected: float | None) -> None:
    """Every delay is between min and max interval, with or without history."""
    schedule = PollSchedule(min_interval=3, max_interval=120, expected=expected)
    for elapsed in range(0, 100_000, 97):
        assert 3 <= schedule.next_delay(float(elapsed)) <= 120


def test_max_interval_caps_the_long_steps() -> None:
    """A small max interval shortens every step of a long refresh, so it costs more calls but is still seen."""
    schedule = PollSchedule(min_interval=1, max_interval=60, expected=HOUR)
    times = poll_times(schedule, HOUR)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert max(gaps) <= 60
    assert times[-1] - HOUR <= schedule.dense_interval


def test_retry_after_lengthens_the_delay() -> None:
    """A Retry-After longer than the planned delay is honoured; a shorter one changes nothing."""
    schedule = PollSchedule(min_interval=5, max_interval=60)
    assert schedule.next_delay(0, retry_after=42) == 42
    assert schedule.next_delay(0, retry_after=1) == 5
    with_history = PollSchedule(min_interval=1, max_interval=600, expected=10)
    assert with_history.next_delay(9, retry_after=30) == 30


def test_retry_after_delays_only_the_throttled_call_in_a_plan() -> None:
    """After a throttled call the plan waits Retry-After, then returns to the schedule."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=10)
    plan = WatchPlan(schedules={"r": schedule}, started={"r": 0.0})
    assert plan.next_due() == 8
    plan.observed("r", 8, terminal=False, retry_after=5)
    assert plan.next_due() == 13
    plan.observed("r", 13, terminal=False)
    assert plan.next_due() == 14


def test_appearance_grace_for_standard_refreshes() -> None:
    """A standard refresh missing from history counts as lost only after the grace period."""
    schedule = PollSchedule(appearance_grace=60)
    assert not schedule.appearance_expired(59)
    assert schedule.appearance_expired(61)


@pytest.mark.parametrize(("low", "high"), [(0, 10), (-1, 10), (10, 5)])
def test_invalid_bounds_are_rejected(low: float, high: float) -> None:
    """Min must be positive and max at least min."""
    with pytest.raises(ValueError, match="interval"):
        PollSchedule(min_interval=low, max_interval=high)


def test_watch_plan_orders_several_refreshes_and_drops_finished_ones() -> None:
    """The plan tells which refreshes are due and forgets terminal ones."""
    plan = WatchPlan(
        schedules={"a": PollSchedule(min_interval=5), "b": PollSchedule(min_interval=10)},
        started={"a": 0.0, "b": 0.0},
    )
    assert plan.next_due() == 5
    assert plan.due_now(5) == ["a"]
    plan.observed("a", 5, terminal=True)
    assert plan.pending == ["b"]
    plan.observed("b", 10, terminal=False, retry_after=30)
    assert plan.next_due() == 40
    plan.observed("b", 40, terminal=True)
    assert plan.next_due() is None
