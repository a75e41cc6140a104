"""How long each triggerer's event-loop thread waited for a CPU, to tell a loop our code blocked from one the OS did not run.

Airflow's triggerer warns when its event loop did not get back to a 0.1 s sleep within its threshold (0.2 s).
The loop can be late for two reasons: code ran on it (or held the interpreter lock: a trigger, a garbage
collection, another thread of the process), or the operating system left the thread runnable but gave the CPU
to other processes. Only the first is a fault of the triggers. Linux counts the second per thread, in
``/proc/<pid>/task/<tid>/schedstat`` (time spent waiting on a run queue); :class:`RunQueueWatch` samples that
count for the loop thread of each triggerer's trigger runner (the main thread of the triggerer's child process)
so a drill can subtract it from a warning's stall.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import re
import threading
import time
from collections.abc import Callable

#: Sampling period, seconds: the error of :meth:`RunQueueWatch.waited` at each end of a window.
EVERY = 0.02


def runner_pid(supervisor_pid: int) -> int | None:
    """The trigger runner: the triggerer supervisor's child process that runs the event loop."""
    import psutil

    with contextlib.suppress(psutil.Error):
        children = psutil.Process(supervisor_pid).children()
        if children:
            return int(children[0].pid)
    return None


def run_queue_wait(pid: int) -> float | None:
    """Seconds the main thread of process ``pid`` has spent runnable but waiting for a CPU, or None if gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class RunQueueWatch:
    """Sample the run-queue wait of each named triggerer's loop thread from :meth:`start` to :meth:`stop`.

    :param supervisors: triggerer name -> a callable returning its supervisor process id now (a restarted
        triggerer has a new one; its samples start again from the new runner).
    """

    def __init__(self, supervisors: dict[str, Callable[[], int]]) -> None:
        self.supervisors = supervisors
        self.samples: dict[str, list[tuple[float, int, float]]] = {name: [] for name in supervisors}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runqueue-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        runners: dict[str, int | None] = {}
        while not self._stop.wait(EVERY):
            now = time.time()
            for name, supervisor in self.supervisors.items():
                pid = runners.get(name)
                wait = run_queue_wait(pid) if pid else None
                if wait is None:
                    with contextlib.suppress(Exception):
                        pid = runners[name] = runner_pid(supervisor())
                    wait = run_queue_wait(pid) if pid else None
                if wait is not None and pid is not None:
                    self.samples[name].append((now, pid, wait))

    def waited(self, name: str, start: float, end: float) -> float | None:
        """Run-queue wait of ``name``'s loop thread between ``start`` and ``end`` (epoch seconds), at most
        :data:`EVERY` wider at each end; None without samples around both ends from one runner process."""
        samples = self.samples[name]
        times = [t for t, _, _ in samples]
        first = bisect.bisect_right(times, start) - 1
        last = bisect.bisect_left(times, end)
        if first < 0 or last >= len(samples) or samples[first][1] != samples[last][1]:
            return None
        return samples[last][2] - samples[first][2]


def stall(warning: str) -> tuple[float, float, float] | None:
    """(end as epoch seconds, seconds blocked, threshold) of a triggerer's "async thread was blocked" log line."""
    when = re.match(r"(\S+Z)", warning)
    took = re.search(r"blocked for ([0-9.]+) seconds", warning)
    limit = re.search(r"threshold of ([0-9.]+) seconds", warning)
    if not when or not took or not limit:
        return None
    end = dt.datetime.fromisoformat(when.group(1).replace("Z", "+00:00")).timestamp()
    return end, float(took.group(1)), float(limit.group(1))


def explained_by_the_os(watch: RunQueueWatch, name: str, warning: str) -> float | None:
    """The run-queue wait of triggerer ``name``'s loop thread during the stall ``warning`` reports, when that wait
    explains it (without it the loop would have been back within Airflow's threshold); else None."""
    found = stall(warning)
    if found is None:
        return None
    end, took, limit = found
    waited = watch.waited(name, end - took, end)
    return waited if waited is not None and took - waited <= limit else None


__all__ = ["EVERY", "RunQueueWatch", "explained_by_the_os", "run_queue_wait", "runner_pid", "stall"]
