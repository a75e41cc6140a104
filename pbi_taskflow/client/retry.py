"""The retry policy shared by the sync and async clients.

Only transient faults are retried (429, 500/502/503/504, dropped connections and read timeouts), only
on idempotent calls, with capped exponential backoff plus jitter, and ``Retry-After`` honoured up to
a cap. Each retry is logged at WARNING through the ``pbi_taskflow.client.sync`` logger.

Test suites call :func:`set_testing` to make retries instant.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pbi_taskflow.errors import (
    PowerBIError,
    RefreshQuotaExceededError,
    ServerError,
    ThrottledError,
    TransportError,
)

log = logging.getLogger("pbi_taskflow.client.sync")

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

_testing = False


def set_testing(enabled: bool = True) -> None:
    """Turn off (``True``) or back on (``False``) the waits between retries, process-wide.

    Retries still happen and are still logged; only the sleeping is skipped. An explicitly
    injected ``sleep`` is still called, so tests can record the waits.
    """
    global _testing
    _testing = enabled


def is_testing() -> bool:
    """Whether :func:`set_testing` turned retry waits off."""
    return _testing


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a fault worth retrying: throttling, a 5xx, or a transport failure."""
    if isinstance(exc, RefreshQuotaExceededError):
        return False
    if isinstance(exc, (ThrottledError, TransportError)):
        return bool(exc.__dict__.get("transient", True))
    if isinstance(exc, ServerError):
        return exc.status is None or exc.status in RETRY_STATUSES
    return False


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient faults.

    :param attempts: total attempts including the first (1 disables retries).
    :param initial_backoff: first wait in seconds; doubles on each retry.
    :param max_backoff: cap of the exponential wait, in seconds.
    :param jitter: up to this many seconds are added at random to each backoff wait.
    :param max_retry_after: cap on a server's ``Retry-After``, in seconds. A longer request is
        honoured only up to this value.
    :param sleep: blocking sleep (default :func:`time.sleep`); injectable for tests.
    :param async_sleep: async sleep (default :func:`asyncio.sleep`); injectable for tests.
    :param clock: monotonic clock in seconds (default :func:`time.monotonic`).
    """

    attempts: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    jitter: float = 1.0
    max_retry_after: float = 300.0
    sleep: Callable[[float], None] | None = None
    async_sleep: Callable[[float], Awaitable[None]] | None = None
    clock: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            msg = f"RetryPolicy attempts must be >= 1, got {self.attempts}."
            raise ValueError(msg)
        if min(self.initial_backoff, self.max_backoff, self.jitter, self.max_retry_after) < 0:
            msg = "RetryPolicy waits must not be negative."
            raise ValueError(msg)

    def now(self) -> float:
        """The policy's monotonic clock."""
        return (self.clock or time.monotonic)()

    def backoff(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if isinstance(exc, ThrottledError) and exc.retry_after is not None:
            return max(0.0, min(float(exc.retry_after), self.max_retry_after))
        base = min(self.max_backoff, self.initial_backoff * (2.0 ** max(0, attempt - 1)))
        if not self.jitter:
            return base
        import random

        return base + random.uniform(0, self.jitter)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (skipped in testing mode unless a ``sleep`` was injected)."""
        if self.sleep is not None:
            self.sleep(seconds)
        elif not _testing and seconds > 0:
            time.sleep(seconds)

    async def await_wait(self, seconds: float) -> None:
        """Async variant of :meth:`wait`."""
        if self.async_sleep is not None:
            await self.async_sleep(seconds)
        elif self.sleep is not None:
            self.sleep(seconds)
        elif not _testing and seconds > 0:
            import asyncio

            await asyncio.sleep(seconds)

    def call(
        self,
        fn: Callable[[], T],
        *,
        endpoint: str,
        idempotent: bool = True,
        dataset: str | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> T:
        """Call ``fn``, retrying transient :class:`PowerBIError` faults when ``idempotent``.

        The last error propagates unchanged once the attempts are used up.
        """
        attempt = 1
        while True:
            try:
                return fn()
            except PowerBIError as exc:
                wait = self._next_wait(exc, attempt, endpoint, idempotent, dataset)
                if wait is None:
                    raise
                if on_retry is not None:
                    on_retry(exc, wait)
                self.wait(wait)
                attempt += 1

    async def acall(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        endpoint: str,
        idempotent: bool = True,
        dataset: str | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> T:
        """Async variant of :meth:`call`."""
        attempt = 1
        while True:
            try:
                return await fn()
            except PowerBIError as exc:
                wait = self._next_wait(exc, attempt, endpoint, idempotent, dataset)
                if wait is None:
                    raise
                if on_retry is not None:
                    on_retry(exc, wait)
                await self.await_wait(wait)
                attempt += 1

    def _next_wait(
        self, exc: PowerBIError, attempt: int, endpoint: str, idempotent: bool, dataset: str | None
    ) -> float | None:
        if not idempotent or attempt >= self.attempts or not is_transient(exc):
            return None
        wait = self.backoff(attempt, exc)
        log_retry(exc, endpoint=endpoint, wait=wait, attempt=attempt, attempts=self.attempts, dataset=dataset)
        return wait


def log_retry(
    exc: BaseException, *, endpoint: str, wait: float, attempt: int, attempts: int, dataset: str | None = None
) -> None:
    """Log one retry at WARNING; a 429 also goes through ``status_log.log_throttle`` when available."""
    status: Any = getattr(exc, "status", None) or type(exc).__name__
    log.warning(
        "Power BI %s failed (%s, attempt %d of %d); retrying in %.1f s: %s",
        endpoint,
        status,
        attempt,
        attempts,
        wait,
        exc,
    )
    if isinstance(exc, ThrottledError):
        try:
            status_log = importlib.import_module("pbi_taskflow.observability.status_log")
            status_log.log_throttle(log, endpoint=endpoint, retry_after=wait, dataset=dataset)
        except Exception:  # status logging is optional and must never break a call
            log.debug("status_log.log_throttle is unavailable", exc_info=True)
