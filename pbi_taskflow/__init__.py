"""Refresh Power BI semantic models from Airflow 3 TaskFlow tasks.

The public API is small and loads lazily: ``import pbi_taskflow`` costs almost nothing at DAG-parse
time and never imports msal, requests or the emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # the decorator and context helpers (Airflow layer)
    "powerbi_refresh": "pbi_taskflow.airflow.decorator",
    "powerbi_context": "pbi_taskflow.airflow.context",
    # value types
    "Refresh": "pbi_taskflow.client.models",
    "Dataflow": "pbi_taskflow.client.models",
    "RefreshOptions": "pbi_taskflow.client.models",
    "RefreshObject": "pbi_taskflow.client.models",
    "RefreshResult": "pbi_taskflow.client.models",
    "RefreshStatus": "pbi_taskflow.client.models",
    "RefreshType": "pbi_taskflow.client.models",
    "CommitMode": "pbi_taskflow.client.models",
    "Handle": "pbi_taskflow.client.models",
    "Target": "pbi_taskflow.client.models",
    # clouds
    "Cloud": "pbi_taskflow.client.clouds",
    "get_cloud": "pbi_taskflow.client.clouds",
    # errors
    "PowerBIError": "pbi_taskflow.errors",
    "AuthenticationError": "pbi_taskflow.errors",
    "ConfigurationError": "pbi_taskflow.errors",
    "RefreshError": "pbi_taskflow.errors",
    "RefreshFailedError": "pbi_taskflow.errors",
    # the client (loads requests/msal on first use)
    "PowerBIClient": "pbi_taskflow.client.sync",
}

__all__ = [
    "AuthenticationError",
    "Cloud",
    "CommitMode",
    "ConfigurationError",
    "Dataflow",
    "Handle",
    "PowerBIClient",
    "PowerBIError",
    "Refresh",
    "RefreshError",
    "RefreshFailedError",
    "RefreshObject",
    "RefreshOptions",
    "RefreshResult",
    "RefreshStatus",
    "RefreshType",
    "Target",
    "get_cloud",
    "powerbi_context",
    "powerbi_refresh",
    "__version__",
]

if TYPE_CHECKING:
    from pbi_taskflow.airflow.context import powerbi_context as powerbi_context
    from pbi_taskflow.airflow.decorator import powerbi_refresh as powerbi_refresh
    from pbi_taskflow.client.clouds import Cloud as Cloud
    from pbi_taskflow.client.clouds import get_cloud as get_cloud
    from pbi_taskflow.client.models import CommitMode as CommitMode
    from pbi_taskflow.client.models import Dataflow as Dataflow
    from pbi_taskflow.client.models import Handle as Handle
    from pbi_taskflow.client.models import Refresh as Refresh
    from pbi_taskflow.client.models import RefreshObject as RefreshObject
    from pbi_taskflow.client.models import RefreshOptions as RefreshOptions
    from pbi_taskflow.client.models import RefreshResult as RefreshResult
    from pbi_taskflow.client.models import RefreshStatus as RefreshStatus
    from pbi_taskflow.client.models import RefreshType as RefreshType
    from pbi_taskflow.client.models import Target as Target
    from pbi_taskflow.client.sync import PowerBIClient as PowerBIClient
    from pbi_taskflow.errors import AuthenticationError as AuthenticationError
    from pbi_taskflow.errors import ConfigurationError as ConfigurationError
    from pbi_taskflow.errors import PowerBIError as PowerBIError
    from pbi_taskflow.errors import RefreshError as RefreshError
    from pbi_taskflow.errors import RefreshFailedError as RefreshFailedError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'pbi_taskflow' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
