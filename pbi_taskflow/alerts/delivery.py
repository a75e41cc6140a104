"""Delivery of alert payloads: webhook URLs from Airflow connections, and POSTs retried on 429/5xx.

A webhook connection holds its URL in one of these places (first found wins):

1. ``password``: the whole URL (recommended: the UI masks it, and webhook URLs are secrets);
2. extra ``webhook_url``;
3. ``host``, when it is a whole ``https://`` URL;
4. ``schema`` (default ``https``) + ``host`` + ``port`` + extra ``endpoint`` (the ``http`` connection layout).

Only ``https`` is accepted, except for loopback addresses (local tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pbi_taskflow.client.api import parse_retry_after
from pbi_taskflow.client.urls import is_loopback
from pbi_taskflow.errors import ConfigurationError

__all__ = ["DeliveryError", "post_json", "webhook_url"]


class DeliveryError(Exception):
    """An alert could not be delivered; the message never contains the webhook URL."""


def check_url(url: str, conn_id: str) -> str:
    """Accept ``https`` URLs, and ``http`` only on loopback; raise :class:`ConfigurationError` otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(url):
        return url
    msg = (
        f"Connection {conn_id!r} does not hold a usable webhook URL (scheme {parts.scheme or 'missing'!r}, "
        f"host {parts.hostname or 'missing'!r}): expected an https:// URL in the connection's password, extra "
        "'webhook_url' or host (http:// is accepted only for 127.0.0.1/localhost)."
    )
    raise ConfigurationError(msg)


def webhook_url(conn_id: str) -> str:
    """Read the webhook URL of an Airflow connection (see the module docs for where it may live)."""
    from pbi_taskflow.airflow.compat import get_connection

    conn = get_connection(conn_id)
    extra = conn.extra_dejson or {}
    candidates = [conn.password, extra.get("webhook_url"), conn.host]
    for value in candidates:
        if isinstance(value, str) and value.strip().lower().startswith(("https://", "http://")):
            return check_url(value.strip(), conn_id)
    if conn.host:
        scheme = conn.schema or "https"
        port = f":{conn.port}" if conn.port else ""
        endpoint = str(extra.get("endpoint") or "").lstrip("/")
        return check_url(f"{scheme}://{conn.host}{port}/{endpoint}", conn_id)
    msg = (
        f"Connection {conn_id!r} has no webhook URL: put the whole URL in its password (or in extra 'webhook_url')."
    )
    raise ConfigurationError(msg)


def post_json(
    url: str,
    payload: Any,
    *,
    attempts: int = 4,
    timeout: float = 10.0,
    max_wait: float = 30.0,
    backoff: float = 1.0,
    sleep: Callable[[float], None] | None = None,
) -> int:
    """POST ``payload`` as JSON; retry 429, 5xx and connection errors with bounded backoff honouring Retry-After.

    :param url: the webhook URL (never logged or put in an error message).
    :param payload: a JSON-serializable document.
    :param attempts: total tries, at least 1.
    :param timeout: seconds for each HTTP request.
    :param max_wait: the longest single wait between tries, whatever Retry-After says.
    :param backoff: first wait when the answer gives no Retry-After; doubles each try.
    :param sleep: the wait function (``time.sleep`` when None).
    :return: the final (2xx) HTTP status.
    :raises DeliveryError: when every try failed or the answer was a non-retryable error.
    """
    import requests

    last = "no attempt made"
    for attempt in range(1, max(1, attempts) + 1):
        wait = backoff * 2 ** (attempt - 1)
        try:
            response = requests.post(url, json=payload, timeout=timeout)
        except requests.RequestException as exc:
            last = f"{type(exc).__name__} (connection failed)"
        else:
            if 200 <= response.status_code < 300:
                return response.status_code
            body = response.text[:200].replace("\n", " ")
            last = f"HTTP {response.status_code} {body}".strip()
            if response.status_code != 429 and response.status_code < 500:
                raise DeliveryError(f"the webhook refused the alert: {last}")
            hinted = parse_retry_after(response.headers.get("Retry-After"))
            if hinted is not None:
                wait = hinted
        if attempt < attempts:
            (sleep or time.sleep)(min(wait, max_wait))
    raise DeliveryError(f"gave up after {attempts} attempt(s); last answer: {last}")
