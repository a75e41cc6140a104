"""The ``[pbi_taskflow]`` section of Airflow's configuration, and durations given as seconds or timedeltas."""

from __future__ import annotations

from typing import Any


def airflow_conf() -> Any:
    """Airflow's configuration (``import airflow`` has already loaded it)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - a Task SDK-only install
        from airflow.sdk.configuration import conf  # type: ignore[no-redef]
    return conf


def option(key: str, fallback: str) -> str:
    """``[pbi_taskflow] <key>`` of Airflow's configuration, or ``fallback``."""
    return str(airflow_conf().get("pbi_taskflow", key, fallback=fallback))


def or_default(value: float | None, default: str) -> float:
    """``value``, or the configured ``default`` (a string from the configuration) when it is None."""
    return float(default) if value is None else value


__all__ = ["airflow_conf", "option", "or_default"]
