"""Airflow provider metadata. A plain literal: no imports, no I/O, nothing that can raise.

Airflow calls :func:`get_provider_info` in every process during ``import airflow``.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "pbi-taskflow",
        "name": "Power BI TaskFlow",
        "description": "Refresh Power BI semantic models from Airflow TaskFlow tasks.",
        "versions": ["0.1.0"],
        "task-decorators": [
            {"name": "powerbi_refresh", "class-name": "pbi_taskflow.decorator.powerbi_refresh_task"},
        ],
    }
