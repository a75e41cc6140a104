"""Unit tests for pbi_taskflow.poll, driven by a simulated clock."""

from __future__ import annotations

import pytest

from pbi_taskflow.poll import PollSchedule, WatchPlan, expected_duration


def simulate(schedule: PollSchedule, ends_at: float) -> tuple[int, float]:
    """Poll a refresh that ends at ``ends_at``; return (status calls, detection delay)."""
    now, calls = schedule.next_delay(0.0), 0
    while True:
        calls += 1
        if now >= ends_at:
            return calls, now - ends_at
        now += schedule.next_delay(now)


def test_expected_duration_is_the_median_of_positive_durations() -> None:
    """History durations give their median; missing or zero durations are ignored."""
    assert expected_duration([10.0, None, 30.0, 0.0, 20.0]) == 20.0
    assert expected_duration([]) is None


def test_one_hour_refresh_with_history_costs_few_calls_and_is_seen_quickly() -> None:
    """An hour-long refresh that lasts as long as its history costs at most 15 calls, seen within 30 s."""
    calls, delay = simulate(PollSchedule(min_interval=5, max_interval=600, expected=3600), 3600)
    assert calls <= 15
    assert delay <= 30


@pytest.mark.parametrize("ends_at", [2400.0, 3300.0, 3900.0, 5400.0])
def test_refresh_off_its_history_is_still_detected(ends_at: float) -> None:
    """Refreshes ending earlier or later than expected are detected within a bounded delay."""
    schedule = PollSchedule(min_interval=5, max_interval=600, expected=3600)
    calls, delay = simulate(schedule, ends_at)
    assert delay <= 0.3 * abs(ends_at - 3600) + 30
    assert calls <= 40


def test_short_refresh_without_history_polls_at_min_interval() -> None:
    """A 10 s refresh with no history is seen within one min interval."""
    calls, delay = simulate(PollSchedule(min_interval=2, max_interval=600), 10)
    assert delay <= 2
    assert calls <= 6


def test_without_history_interval_grows_with_elapsed_time_up_to_max() -> None:
    """Without history the delay is a fraction of the time waited, clamped to [min, max]."""
    schedule = PollSchedule(min_interval=5, max_interval=60)
    assert schedule.next_delay(0) == 5
    assert schedule.next_delay(100) == 25
    assert schedule.next_delay(10_000) == 60


def test_delays_stay_within_bounds() -> None:
    """Every delay is between min and max interval, with or without history."""
    for expected in (None, 10.0, 600.0, 3600.0, 86_400.0):
        schedule = PollSchedule(min_interval=3, max_interval=120, expected=expected)
        for elapsed in range(0, 100_000, 97):
            assert 3 <= schedule.next_delay(float(elapsed)) <= 120


def test_retry_after_lengthens_the_delay() -> None:
    """A Retry-After longer than the planned delay is honoured."""
    schedule = PollSchedule(min_interval=5, max_interval=60)
    assert schedule.next_delay(0, retry_after=42) == 42
    assert schedule.next_delay(0, retry_after=1) == 5


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
