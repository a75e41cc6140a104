"""Redaction in one place: pbi_taskflow's own patterns, extra secrets, and Airflow's secret masker.

Every text pbi_taskflow writes for people (status lines, alerts, error texts, refresh-log rows) goes
through :func:`redact_text` (or :func:`redact_tree` for nested values): Airflow's masked values, bearer
tokens, JWTs and ``secret=`` pairs become ``***``.

The masker moved between Airflow releases (3.0: ``airflow.sdk.execution_time.secrets_masker``, 3.1+:
``airflow.sdk._shared.secrets_masker``, re-exported by ``airflow.sdk.log``). Every part of pbi_taskflow
that registers a secret or redacts a log line, an alert or an error text goes through
:func:`masker`, so each Airflow version CI runs has the same lookup tested. Without Airflow both
operations do nothing (redaction by pbi_taskflow's own patterns still applies where it is used).
"""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import Any

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


_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 ***"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"), "***"),
    (
        re.compile(r"(?i)\b(client_secret|password|secret|access_token|refresh_token|token|sig|assertion)=([^&\s\"']+)"),
        r"\1=***",
    ),
    (re.compile(r"(?i)(\"(?:client_secret|password|access_token|refresh_token)\"\s*:\s*)\"[^\"]*\""), r'\1"***"'),
)


def redact_text(text: str | None, extra_secrets: tuple[str, ...] = ()) -> str | None:
    """Hide secrets in ``text``: Airflow's masked values, ``extra_secrets``, bearer tokens, JWTs, ``secret=`` pairs.

    :param text: the text to clean (None stays None).
    :param extra_secrets: further values to hide (for example a webhook URL).
    """
    if text is None:
        return None
    # Airflow's masker holds every connection password and secret variable the process has read; it is
    # consulted only when Airflow is already loaded (always the case in a task or triggerer).
    out = airflow_redact(str(text))
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out


def redact_tree(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    """:func:`redact_text` applied to every string in nested mappings and lists (lists come back as lists)."""
    if isinstance(value, str):
        return redact_text(value, extra_secrets)
    if isinstance(value, Mapping):
        return {k: redact_tree(v, extra_secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(v, extra_secrets) for v in value]
    return value


__all__ = ["MASKER_MODULES", "airflow_redact", "masker", "redact_text", "redact_tree", "register_secrets_with_airflow"]
