"""The hook's public path, ``pbi_taskflow.hook.PowerBIHook`` (implemented in :mod:`pbi_taskflow.airflow.hook`)."""

from __future__ import annotations

from pbi_taskflow.airflow.hook import PowerBIHook

__all__ = ["PowerBIHook"]
