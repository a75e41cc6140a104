"""The scale drill's judge of loop-lag warnings: a stall counts as the OS's only when the loop thread's run-queue
wait (Linux scheduler statistics) explains it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from runqueue import RunQueueWatch, explained_by_the_os

WARNING = ("2026-12-03T20:18:08.791238Z [info     ] Triggerer's async thread was blocked for 0.23 seconds, exceeding "
           "the configured warning threshold of 0.20 seconds. This is likely caused by a badly-written trigger.")
END = dt.datetime(2026, 12, 3, 20, 18, 8, 791238, tzinfo=dt.timezone.utc).timestamp()  # the line's time


def _watch(*samples: tuple[float, int, float]) -> RunQueueWatch:
    watch = RunQueueWatch({"triggerer-a": lambda: 0})
    watch.samples["triggerer-a"] = list(samples)
    return watch


def test_a_stall_the_loop_thread_spent_waiting_for_a_cpu_is_explained() -> None:
    """0.23 s blocked, 0.21 s of it on the run queue: within the 0.2 s threshold without that wait."""
    watch = _watch((END - 0.25, 7, 3.00), (END - 0.1, 7, 3.10), (END + 0.01, 7, 3.21))
    assert explained_by_the_os(watch, "triggerer-a", WARNING) == pytest.approx(0.21)


def test_a_stall_the_loop_thread_spent_running_is_not_explained() -> None:
    """0.23 s blocked with only 0.02 s on the run queue: something ran on the loop (or held the interpreter lock)."""
    watch = _watch((END - 0.25, 7, 3.00), (END + 0.01, 7, 3.02))
    assert explained_by_the_os(watch, "triggerer-a", WARNING) is None


def test_without_samples_around_the_stall_from_one_runner_it_is_not_explained() -> None:
    """No sample after the stall, or samples from two runner processes (a restart): nothing can be told."""
    assert explained_by_the_os(_watch((END - 0.25, 7, 3.0)), "triggerer-a", WARNING) is None
    assert explained_by_the_os(_watch((END - 0.25, 7, 3.0), (END + 0.01, 8, 9.0)), "triggerer-a", WARNING) is None


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_two_processes_spinning_on_one_cpu_each_wait_on_its_run_queue() -> None:
    """The counter the judge reads is real: two busy processes pinned to one CPU for a second wait for it in turn
    (together at least 0.3 s), which a process only running never would."""
    code = (
        "import os, time\n"
        "from runqueue import run_queue_wait\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "before = run_queue_wait(os.getpid())\n"
        "end = time.monotonic() + 1.0\n"
        "while time.monotonic() < end:\n"
        "    pass\n"
        "print(run_queue_wait(os.getpid()) - before)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(__file__)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    waits = [float(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(waits) >= 0.3, waits
