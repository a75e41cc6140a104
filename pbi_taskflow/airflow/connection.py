"""Airflow connection -> :class:`~pbi_taskflow.client.settings.ConnectionSettings`.

The only module that knows how an Airflow connection of type ``pbi_taskflow`` stores its fields:
``login`` is the client id, ``password`` the client secret, everything else lives in ``extra``
(plain keys, or the ``extra__pbi_taskflow__`` form the UI writes). Secrets found here are
registered with Airflow's secret masker before anything can log them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.errors import ConfigurationError

CONN_TYPE = "pbi_taskflow"
DEFAULT_CONN_ID = "powerbi_default"

log = logging.getLogger("pbi_taskflow.airflow.connection")


def _extra(conn: Any) -> Mapping[str, Any]:
    extra = getattr(conn, "extra_dejson", None)
    if isinstance(extra, Mapping):
        return extra
    raw = getattr(conn, "extra", None)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        msg = f"The extra of connection {getattr(conn, 'conn_id', '?')!r} is not valid JSON; expected an object."
        raise ConfigurationError(msg) from None
    return value if isinstance(value, Mapping) else {}


def settings_from_connection(conn: Any) -> ConnectionSettings:
    """Validated settings from an Airflow ``Connection``; its secrets are masked in Airflow logs.

    :raises ConfigurationError: naming the connection and the wrong or missing field.
    """
    conn_id = getattr(conn, "conn_id", None)
    conn_type = getattr(conn, "conn_type", None)
    if conn_type and conn_type not in (CONN_TYPE, "generic"):
        log.warning(
            "Connection %r has type %r; pbi_taskflow expects type %r (fields are read the same way).",
            conn_id, conn_type, CONN_TYPE,
        )
    mapping = {"login": conn.login, "password": conn.password, "extra": _extra(conn)}
    _mask(mapping["password"], *(_extra(conn).get(k) for k in _SECRET_EXTRAS))
    settings = ConnectionSettings.from_mapping(mapping, conn_id=conn_id)
    _mask(*settings.secrets())
    return settings


_SECRET_EXTRAS = (
    "certificate",
    "private_key",
    "certificate_password",
    "extra__pbi_taskflow__certificate",
    "extra__pbi_taskflow__private_key",
    "extra__pbi_taskflow__certificate_password",
)


def _mask(*values: Any) -> None:
    from pbi_taskflow.observability.redact import register_secrets_with_airflow

    register_secrets_with_airflow(*(v for v in values if isinstance(v, str)))


def get_settings(conn_id: str = DEFAULT_CONN_ID) -> ConnectionSettings:
    """Settings of the Airflow connection ``conn_id`` (looked up through Airflow's secrets backends)."""
    from pbi_taskflow.airflow.compat import get_connection

    return settings_from_connection(get_connection(conn_id))


async def aget_settings(conn_id: str = DEFAULT_CONN_ID) -> ConnectionSettings:
    """Like :func:`get_settings`, for async code (the triggerer)."""
    from pbi_taskflow.airflow.compat import aget_connection

    return settings_from_connection(await aget_connection(conn_id))


__all__ = ["CONN_TYPE", "DEFAULT_CONN_ID", "aget_settings", "get_settings", "settings_from_connection"]
