"""Unit tests for pbi_taskflow.engine.policy: poll bounds and their defaults."""

from __future__ import annotations

import pytest

from pbi_taskflow.airflow.provider_info import get_provider_info
from pbi_taskflow.engine.policy import RefreshPolicy
from pbi_taskflow.engine.schedule import PollSchedule
from pbi_taskflow.errors import ConfigurationError


def test_poll_defaults_match_the_config_section() -> None:
    """The policy's poll bounds are the defaults the [pbi_taskflow] config section declares."""
    options = get_provider_info()["config"]["pbi_taskflow"]["options"]
    policy = RefreshPolicy()
    assert policy.poll_min == float(options["poll_min_interval"]["default"]) == PollSchedule().min_interval == 1.0
    assert policy.poll_max == float(options["poll_max_interval"]["default"]) == PollSchedule().max_interval


def test_schedule_carries_the_bounds_and_expected_duration() -> None:
    """The schedule built for a refresh uses the policy's bounds and the expected duration from history."""
    schedule = RefreshPolicy(poll_min=2, poll_max=90).schedule(300.0)
    assert (schedule.min_interval, schedule.max_interval, schedule.expected) == (2.0, 90.0, 300.0)
    assert RefreshPolicy().schedule(None).expected is None


@pytest.mark.parametrize(("poll_min", "poll_max", "named"), [(0, 600, "poll_interval"), (10, 5, "max_poll_interval")])
def test_invalid_poll_bounds_name_the_argument(poll_min: float, poll_max: float, named: str) -> None:
    """A non-positive minimum or a maximum below it fails naming the argument."""
    with pytest.raises(ConfigurationError, match=named):
        RefreshPolicy(poll_min=poll_min, poll_max=poll_max)
