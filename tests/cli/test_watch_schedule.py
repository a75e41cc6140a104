"""`pbi-taskflow refresh` spaces its status calls on the schedule a task's wait uses (pure logic, virtual clock)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from pbi_taskflow.cli import main as cli_main
from pbi_taskflow.client.models import Handle, RefreshState, RefreshStatus
from pbi_taskflow.engine.schedule import PollSchedule


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _Client:
    """A refresh that runs until ``ends_at`` on the virtual clock; records when its status is read."""

    def __init__(self, clock: _Clock, ends_at: float) -> None:
        self.clock, self.ends_at, self.calls = clock, ends_at, []  # type: ignore[var-annotated]

    def get_refresh_state(self, handle: Handle) -> RefreshState:
        self.calls.append(self.clock.now)
        done = self.clock.now >= self.ends_at
        return RefreshState(RefreshStatus.COMPLETED if done else RefreshStatus.UNKNOWN)


def test_status_calls_follow_the_poll_schedule_not_a_fixed_interval(mocker: Any) -> None:
    """Each delay between two status calls is PollSchedule.next_delay of the time since the watch began."""
    clock = _Clock()
    mocker.patch.object(cli_main.time, "monotonic", clock.monotonic)
    mocker.patch.object(cli_main.time, "sleep", clock.sleep)
    client = _Client(clock, ends_at=clock.now + 300)
    handle = Handle("ws", "Sales", "ds", "Revenue", "r1", "standard", "2026-12-03T10:00:00+00:00")
    console = Console(file=io.StringIO(), force_terminal=False)

    [state] = cli_main.watch_refreshes(client, [handle], poll_interval=1.0, timeout=3600.0,  # type: ignore[arg-type]
                                       console=console)

    assert state is not None
    assert state.status is RefreshStatus.COMPLETED
    schedule = PollSchedule(min_interval=1.0, max_interval=600.0)
    start, expected, at = 1000.0, [], 1000.0 + schedule.next_delay(0.0)
    while True:
        expected.append(at)
        if at >= client.ends_at:
            break
        at += schedule.next_delay(at - start)
    assert client.calls == expected
    assert len(client.calls) < 300 / 5  # far fewer than the former fixed 5-second interval
