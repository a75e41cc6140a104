"""Unit tests for the retry policy with a fake sleep."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pbi_taskflow.client import retry
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.errors import (
    InvalidRequestError,
    RefreshQuotaExceededError,
    ServerError,
    ThrottledError,
    TransportError,
)


class Flaky:
    """Fails with the given errors, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def policy(waits: list[float], **kw) -> RetryPolicy:
    return RetryPolicy(sleep=waits.append, jitter=0.0, **kw)


def test_transient_errors_are_retried_with_exponential_backoff():
    """503s and dropped connections are retried with doubling, capped waits."""
    waits: list[float] = []
    fn = Flaky(ServerError("x", status=503), TransportError("reset"), ServerError("x", status=500))
    assert policy(waits, initial_backoff=1, max_backoff=3).call(fn, endpoint="history") == "ok"
    assert fn.calls == 4
    assert waits == [1.0, 2.0, 3.0]


def test_retry_after_is_honoured_up_to_the_cap():
    """A 429 waits what Retry-After says, but no longer than max_retry_after."""
    waits: list[float] = []
    fn = Flaky(ThrottledError("t", retry_after=7), ThrottledError("t", retry_after=999))
    policy(waits, max_retry_after=60).call(fn, endpoint="history")
    assert waits == [7.0, 60.0]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(InvalidRequestError("bad", status=400), id="400"),
        pytest.param(RefreshQuotaExceededError("quota", status=429), id="quota"),
        pytest.param(ServerError("not implemented", status=501), id="501"),
    ],
)
def test_non_transient_errors_are_not_retried(error):
    """4xx, quota and 501 propagate at once."""
    waits: list[float] = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        policy(waits).call(fn, endpoint="x")
    assert fn.calls == 1
    assert waits == []


def test_non_idempotent_calls_are_never_retried():
    """A POST is not re-sent by the policy."""
    fn = Flaky(ServerError("x", status=503))
    with pytest.raises(ServerError):
        policy([]).call(fn, endpoint="refresh_post", idempotent=False)
    assert fn.calls == 1


def test_attempts_are_bounded_and_last_error_propagates():
    """After the last attempt the last error is raised unchanged."""
    last = ServerError("third", status=502)
    fn = Flaky(ServerError("1", status=502), ServerError("2", status=502), last)
    with pytest.raises(ServerError) as info:
        policy([], attempts=3).call(fn, endpoint="x")
    assert info.value is last


def test_each_retry_is_logged_at_warning(caplog):
    """Retries are logged with endpoint, status, attempt and wait."""
    caplog.set_level(logging.WARNING, logger="pbi_taskflow.client.sync")
    policy([]).call(Flaky(ServerError("boom", status=503)), endpoint="details")
    [record] = [r for r in caplog.records if r.name == "pbi_taskflow.client.sync"]
    assert record.levelno == logging.WARNING
    assert "details" in record.getMessage()
    assert "503" in record.getMessage()
    assert "attempt 1 of 5" in record.getMessage()


def test_set_testing_skips_real_sleep(monkeypatch):
    """In testing mode the default sleep is skipped."""
    slept: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    retry.set_testing(True)
    try:
        RetryPolicy().call(Flaky(ServerError("x", status=503)), endpoint="x")
    finally:
        retry.set_testing(False)
    assert slept == []
    assert not retry.is_testing()


def test_async_call_retries_with_async_sleep():
    """acall retries the same faults with the async sleep."""
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    fn = Flaky(ThrottledError("t", retry_after=2))

    async def run() -> str:
        async def attempt() -> str:
            return fn()

        return await RetryPolicy(async_sleep=fake_sleep).acall(attempt, endpoint="history")

    assert asyncio.run(run()) == "ok"
    assert waits == [2.0]


def test_invalid_policy_is_rejected():
    """attempts < 1 is a configuration mistake."""
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def test_throttle_retries_also_reach_status_log(mocker):
    """A 429 retry is logged by the client logger and through status_log.log_throttle."""
    from pbi_taskflow.observability import status_log
    spy = mocker.spy(status_log, "log_throttle")
    policy([]).call(Flaky(ThrottledError("t", retry_after=3)), endpoint="history", dataset="Revenue")
    spy.assert_called_once()
    assert spy.call_args.kwargs == {"endpoint": "history", "retry_after": 3.0, "dataset": "Revenue"}
