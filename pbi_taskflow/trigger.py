"""The trigger's stable class path, ``pbi_taskflow.trigger.PowerBIRefreshTrigger``.

Airflow stores a deferred task's trigger by this path in its database, so it stays importable across releases
(the trigger is implemented in :mod:`pbi_taskflow.airflow.trigger`).
"""

from __future__ import annotations

from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger

__all__ = ["PowerBIRefreshTrigger"]
