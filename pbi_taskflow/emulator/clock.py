"""The emulated clock: runs ``time_scale`` times faster than real time."""

from __future__ import annotations

import datetime as dt
import threading
import time


class EmulatedClock:
    """A clock whose time advances ``time_scale`` times faster than real time.

    :param time_scale: emulated seconds per real second (``60`` makes a 10-minute refresh last 10 s).
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._check(time_scale)
        self._scale = float(time_scale)
        self._real0 = time.monotonic()
        self._emu0 = dt.datetime.now(dt.timezone.utc)

    @staticmethod
    def _check(time_scale: float) -> None:
        if not time_scale > 0:
            msg = f"time_scale must be a positive number of emulated seconds per real second, got {time_scale!r}."
            raise ValueError(msg)

    @property
    def time_scale(self) -> float:
        return self._scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self._check(value)
        with self._lock:
            now = self._now_locked()
            self._real0, self._emu0, self._scale = time.monotonic(), now, float(value)

    def _now_locked(self) -> dt.datetime:
        return self._emu0 + dt.timedelta(seconds=(time.monotonic() - self._real0) * self._scale)

    def now(self) -> dt.datetime:
        """The emulated "now" (aware, UTC)."""
        with self._lock:
            return self._now_locked()

    def advance(self, emulated_seconds: float) -> None:
        """Jump the emulated clock forward without waiting."""
        with self._lock:
            self._emu0 += dt.timedelta(seconds=emulated_seconds)

    def real_seconds(self, emulated_seconds: float) -> float:
        """How many real seconds ``emulated_seconds`` take."""
        return emulated_seconds / self._scale

    def sleep(self, emulated_seconds: float) -> None:
        """Sleep for ``emulated_seconds`` of emulated time."""
        time.sleep(max(0.0, self.real_seconds(emulated_seconds)))
