"""Registration of secrets with Airflow's secret masker (a no-op without Airflow)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_MASKER_MODULES = ("airflow.sdk.log", "airflow.sdk._shared.secrets_masker", "airflow.sdk.execution_time.secrets_masker")


def _mask_secret() -> Callable[[Any], None] | None:
    import warnings

    for name in _MASKER_MODULES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except ImportError:
            continue
        func = getattr(module, "mask_secret", None)
        if callable(func):
            return func  # type: ignore[no-any-return]
    return None


def register_secrets_with_airflow(*values: str | None) -> int:
    """Ask Airflow to mask ``values`` in task logs; returns how many were registered.

    Empty values are skipped. Without Airflow installed this does nothing and returns 0.
    """
    wanted = [v for v in values if isinstance(v, str) and v.strip()]
    if not wanted:
        return 0
    mask = _mask_secret()
    if mask is None:
        return 0
    for value in wanted:
        mask(value)
    return len(wanted)
