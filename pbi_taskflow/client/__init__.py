"""The Power BI client layer: REST calls, sign-in, names, retries; nothing here knows Airflow.

What it owns: :mod:`~pbi_taskflow.client.sync` (:class:`PowerBIClient`, requests) and
:mod:`~pbi_taskflow.client.aio` (:class:`AsyncPowerBIClient`, httpx) over their shared
:mod:`~pbi_taskflow.client.base`; the REST API written once in :mod:`~pbi_taskflow.client.api`;
credentials in :mod:`~pbi_taskflow.client.auth`; name and id resolution (:mod:`~pbi_taskflow.client.names`,
:mod:`~pbi_taskflow.client.resolve`); the retry policy (:mod:`~pbi_taskflow.client.retry`); clouds, URLs,
the pooled async HTTP client; the value types every layer shares (:mod:`~pbi_taskflow.client.models`,
:mod:`~pbi_taskflow.client.options`); and :class:`~pbi_taskflow.client.settings.ConnectionSettings`, the
validated connection fields that build a client.

What it may import: :mod:`pbi_taskflow.errors`, :mod:`pbi_taskflow.observability.redact` and itself; never
Airflow, the engine, the Airflow layer or the command line (``tests/unit/test_layers.py`` checks this).
Importing this package loads neither msal nor requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbi_taskflow.client.aio import AsyncPowerBIClient as AsyncPowerBIClient
    from pbi_taskflow.client.sync import PowerBIClient as PowerBIClient

_LAZY = {"PowerBIClient": "pbi_taskflow.client.sync", "AsyncPowerBIClient": "pbi_taskflow.client.aio"}

__all__ = ["AsyncPowerBIClient", "PowerBIClient"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'pbi_taskflow.client' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
