"""The operator's public path, ``pbi_taskflow.operator.PowerBIRefreshOperator`` (implemented in
:mod:`pbi_taskflow.airflow.operator`)."""

from __future__ import annotations

from pbi_taskflow.airflow.operator import PowerBIRefreshOperator

__all__ = ["PowerBIRefreshOperator"]
