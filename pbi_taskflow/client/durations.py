"""Durations: how every option reads one, how a message writes one, and the default of Power BI's appearance grace.

The one place a duration given by a person (``timeout=``, ``min_interval=``, ``poll_interval=``,
``appearance_grace``, a context helper's ``period``) is read and checked; the message names the option.
Cheap to import (DAG files load it through the operator's argument checks).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pbi_taskflow.errors import ConfigurationError

#: How long a refresh Power BI accepted may stay missing from its answers (the history for a standard refresh,
#: the details for an enhanced one) before it counts as lost, in seconds: the one default of the
#: ``appearance_grace`` policy, the ``[pbi_taskflow] appearance_grace`` option and the clients.
APPEARANCE_GRACE = 180.0


def to_seconds(value: Any, name: str, *, allow_none: bool = True) -> float | None:
    """``value`` in seconds.

    :param value: a positive number of seconds or a timedelta; None where ``allow_none``.
    :param name: the option's name, for the message.
    :raises ConfigurationError: for anything else (a bool, a string, zero or less), naming ``name``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        msg = f"Invalid {name} {value!r}: expected a positive number of seconds or a timedelta."
        raise ConfigurationError(msg)
    return float(value)


def required_seconds(value: Any, name: str) -> float:
    """Like :func:`to_seconds`, where None is not allowed."""
    seconds = to_seconds(value, name, allow_none=False)
    assert seconds is not None
    return seconds


def format_seconds(value: float) -> str:
    """``value`` seconds as a message writes them: whole seconds from 10 s on, two significant digits below
    (a timeout of 0.35 s is not "0 s")."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


__all__ = ["APPEARANCE_GRACE", "format_seconds", "required_seconds", "to_seconds"]
