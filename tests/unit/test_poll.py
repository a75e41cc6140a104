"""Unit tests for pbi_taskflow.poll, driven by a simulated clock."""

from __future__ import annotations

import pytest

from pbi_taskflow.poll import (
    DENSE_FRACTION,
    DENSE_LEAD,
    EARLY_FRACTION,
    GROWTH,
    NO_HISTORY_LEAD,
    PollSchedule,
    WatchPlan,
    expected_duration,
)

HOUR = 3600.0


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


def test_expected_duration_is_the_median_of_positive_durations() -> None:
    """History durations give their median; missing or zero durations are ignored."""
    assert expected_duration([10.0, None, 30.0, 0.0, 20.0]) == 20.0
    assert expected_duration([]) is None


@pytest.mark.parametrize("ends_at", [9.5, 10.0, 10.5, 11.0, 11.5])
def test_ten_second_refresh_with_history_costs_few_calls_and_is_seen_within_a_second(ends_at: float) -> None:
    """A 10 s refresh with 10 s of history, ending a little early or late, costs at most 6 calls, seen within 1 s."""
    calls, delay = simulate(PollSchedule(min_interval=1, max_interval=600, expected=10), ends_at)
    assert calls <= 6
    assert delay <= 1


def test_short_expected_duration_goes_straight_to_the_dense_window() -> None:
    """Under a minute of history, the first call comes two dense intervals before the expected end."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=30)
    assert schedule.next_delay(0) == 30 - DENSE_LEAD * 1
    assert poll_times(schedule, 30) == [28, 29, 30]


@pytest.mark.parametrize("min_interval", [1.0, 5.0])
def test_ten_minute_refresh_with_history(min_interval: float) -> None:
    """A 10 min refresh lasting as long as its history costs at most 12 calls and is seen within a dense interval."""
    schedule = PollSchedule(min_interval=min_interval, max_interval=600, expected=600)
    calls, delay = simulate(schedule, 600)
    assert calls <= 12
    assert delay <= schedule.dense_interval


@pytest.mark.parametrize("min_interval", [1.0, 5.0])
@pytest.mark.parametrize("ends_at", [3600.0, 3601.0, 3630.0])
def test_one_hour_refresh_with_history_costs_few_calls_and_is_seen_quickly(min_interval: float, ends_at: float) -> None:
    """An hour-long refresh near its history's duration costs at most 15 calls, seen within 30 s."""
    calls, delay = simulate(PollSchedule(min_interval=min_interval, max_interval=600, expected=HOUR), ends_at)
    assert calls <= 15
    assert delay <= 30


def test_long_refresh_gets_an_early_check_then_doubling_delays() -> None:
    """With an hour of history the first call comes after 5 % of it, then each delay equals the time waited."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    assert schedule.next_delay(0) == EARLY_FRACTION * HOUR
    assert poll_times(schedule, 1000)[:4] == [180, 360, 720, 1320]


@pytest.mark.parametrize(("fails_at", "seen_within"), [(30.0, EARLY_FRACTION * HOUR), (600.0, 600.0), (1800.0, 600.0)])
def test_early_failure_of_a_long_refresh_is_seen_soon(fails_at: float, seen_within: float) -> None:
    """A refresh expected to last an hour that fails early is seen within the early check or one max interval."""
    calls, delay = simulate(PollSchedule(min_interval=1, max_interval=600, expected=HOUR), fails_at)
    assert delay <= seen_within
    assert calls <= 6


@pytest.mark.parametrize("ends_at", [2400.0, 3300.0, 3540.0])
def test_early_end_is_seen_within_half_its_lead(ends_at: float) -> None:
    """A refresh ending before its expected end is seen within half its lead plus 30 s, and one max interval."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    calls, delay = simulate(schedule, ends_at)
    assert delay <= min(600, 0.5 * (HOUR - ends_at) + 30)
    assert calls <= 12


@pytest.mark.parametrize("ends_at", [3900.0, 5400.0, 2 * HOUR])
def test_late_refresh_backs_off_in_proportion_to_its_overrun(ends_at: float) -> None:
    """A refresh running past its expected end is seen within a dense interval plus about a third of the overrun."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    calls, delay = simulate(schedule, ends_at)
    assert delay <= schedule.dense_interval + 0.35 * (ends_at - HOUR)
    assert calls <= 35


def test_dense_polls_span_the_expected_end() -> None:
    """Around the expected end, calls are one dense interval apart, from two intervals before it."""
    schedule = PollSchedule(min_interval=1, max_interval=600, expected=HOUR)
    dense = schedule.dense_interval
    assert dense == HOUR * DENSE_FRACTION
    times = poll_times(schedule, HOUR + 3 * dense)
    assert times[-5:] == pytest.approx([HOUR + k * dense for k in (-1, 0, 1, 2, 3)])
    assert times[-6] == pytest.approx(HOUR - DENSE_LEAD * dense)


@pytest.mark.parametrize(
    ("ends_at", "max_calls", "max_delay"), [(10.0, 6, 2.5), (600.0, 25, 150.0), (HOUR, 32, 600.0)]
)
def test_without_history_calls_and_latency_grow_with_the_refresh(
    ends_at: float, max_calls: int, max_delay: float
) -> None:
    """Without history 10 s / 10 min / 1 h cost a bounded number of calls, seen within a quarter of the wait."""
    calls, delay = simulate(PollSchedule(min_interval=1, max_interval=600), ends_at)
    assert calls <= max_calls
    assert delay <= max_delay


def test_without_history_interval_grows_with_elapsed_time_up_to_max() -> None:
    """Without history the delay is a fraction of the time waited, clamped to [min, max]."""
    schedule = PollSchedule(min_interval=5, max_interval=60)
    assert schedule.next_delay(0) == 5
    assert schedule.next_delay(100) == (100 + NO_HISTORY_LEAD) * GROWTH
    assert schedule.next_delay(10_000) == 60


@pytest.mark.parametrize("expected", [None, 10.0, 600.0, HOUR, 86_400.0])
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
    assert max(gaps) == 60
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
