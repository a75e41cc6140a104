"""Airflow's secret masker, looked up in one place: registration of secrets and redaction of text.

The masker moved between Airflow releases (3.0: ``airflow.sdk.execution_time.secrets_masker``, 3.1+:
``airflow.sdk._shared.secrets_masker``, re-exported by ``airflow.sdk.log``). Every part of pbi_taskflow
that registers a secret or redacts a log line, an alert or an error text goes through
:func:`masker`, so each Airflow version CI runs has the same lookup tested. Without Airflow both
operations do nothing (redaction by pbi_taskflow's own patterns still applies where it is used).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType

#: Where Airflow keeps its secret masker, newest first.
MASKER_MODULES = (
    "airflow.sdk._shared.secrets_masker",
    "airflow.sdk.execution_time.secrets_masker",
    "airflow.sdk.log",
    "airflow.utils.log.secrets_masker",
)


def masker(*, load: bool = True) -> ModuleType | None:
    """The module holding Airflow's ``mask_secret`` and ``redact``, or None without Airflow.

    :param load: import it when needed. With False it is only looked up when Airflow is already loaded
        (status lines never import Airflow themselves).
    """
    if not load and "airflow" not in sys.modules:
        return None
    for name in MASKER_MODULES:
        module = sys.modules.get(name)
        if module is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    module = importlib.import_module(name)
            except ImportError:
                continue
        if callable(getattr(module, "mask_secret", None)) and callable(getattr(module, "redact", None)):
            return module
    return None


def register_secrets_with_airflow(*values: str | None) -> int:
    """Ask Airflow to mask ``values`` in task logs; returns how many were registered.

    Empty values are skipped. Without Airflow installed this does nothing and returns 0.
    """
    wanted = [v for v in values if isinstance(v, str) and v.strip()]
    if not wanted:
        return 0
    module = masker()
    if module is None:
        return 0
    for value in wanted:
        module.mask_secret(value)
    return len(wanted)


def airflow_redact(text: str) -> str:
    """``text`` with every secret Airflow's masker knows replaced (unchanged without Airflow loaded)."""
    module = masker(load=False)
    if module is None:
        return text
    try:
        return str(module.redact(text))
    except Exception:  # noqa: BLE001 - redaction must not stop logging or an alert; other patterns still apply
        return text


__all__ = ["MASKER_MODULES", "airflow_redact", "masker", "register_secrets_with_airflow"]
