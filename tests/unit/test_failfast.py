"""Unit tests for pbi_taskflow.airflow.failfast: permanent errors fail without retries and stay recognisable."""

from __future__ import annotations

import pickle

import pytest

from pbi_taskflow.airflow.failfast import fail_fast
from pbi_taskflow.errors import ConfigurationError, InvalidSecretError, RefreshFailedError, ThrottledError


@pytest.mark.parametrize(
    "exc",
    [InvalidSecretError("bad secret", code="AADSTS7000215"), TypeError("expected a name, got 42"),
     ConfigurationError("bad field")],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_keep_their_class_message_and_pickle(exc: BaseException) -> None:
    """A permanent error becomes an AirflowFailException that is still its own class, prints the same and pickles."""
    from airflow.sdk.exceptions import AirflowFailException

    final = fail_fast(exc)
    assert isinstance(final, AirflowFailException)
    assert isinstance(final, type(exc))
    assert type(final).__name__ == type(exc).__name__
    assert str(final) == str(exc)
    again = pickle.loads(pickle.dumps(final))
    assert isinstance(again, AirflowFailException)
    assert isinstance(again, type(exc))
    assert str(again) == str(exc)


def test_transient_and_refresh_errors_are_left_alone() -> None:
    """Throttling and refresh failures keep Airflow's retries."""
    for exc in (ThrottledError("slow", retry_after=1), RefreshFailedError("failed", results=[])):
        assert fail_fast(exc) is exc
