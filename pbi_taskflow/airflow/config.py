"""The ``[pbi_taskflow]`` section of Airflow's configuration."""

from __future__ import annotations

from typing import Any

from pbi_taskflow.errors import ConfigurationError


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


def number_option(key: str, fallback: str, *, integer: bool = False) -> float:
    """``[pbi_taskflow] <key>`` as a number of seconds (or a whole number with ``integer``), or ``fallback``.

    :raises ConfigurationError: when the configured value is not such a number, naming the option and where to fix it.
    """
    text = option(key, fallback)
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or (integer and not value.is_integer()):
        kind = "a whole number" if integer else "a number"
        msg = (f"Invalid [pbi_taskflow] {key} {text!r}: expected {kind}. Fix it in airflow.cfg or in the "
               f"AIRFLOW__PBI_TASKFLOW__{key.upper()} environment variable.")
        raise ConfigurationError(msg)
    return value


__all__ = ["airflow_conf", "number_option", "option"]
