"""The ``requests`` session MSAL talks through (imported only when a token is first needed)."""

from __future__ import annotations

import threading
from typing import Any

import requests


class TrustSession(requests.Session):
    """A session that passes ``verify=<ca_bundle>`` on every request and remembers the last answer.

    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override ``Session.verify`` (and so MSAL's ``verify=``),
    but not a per-request ``verify``; this session sets it per request when a CA bundle is configured.
    The status and ``Retry-After`` of the last answer let error mapping tell throttling from refusal.

    :param ca_bundle: PEM file of the CAs to trust, or ``None`` for the default trust store.
    :param timeout: default (connect, read) timeout in seconds.
    """

    def __init__(self, ca_bundle: str | None = None, timeout: tuple[float, float] = (10.0, 30.0)) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle
        self.default_timeout = timeout
        self._last = threading.local()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        self._last.status = None
        self._last.retry_after = None
        response = super().request(method, url, *args, **kwargs)
        self._last.status = response.status_code
        self._last.retry_after = response.headers.get("Retry-After")
        return response

    @property
    def last_status(self) -> int | None:
        """HTTP status of the last answer on this thread."""
        return getattr(self._last, "status", None)

    @property
    def last_retry_after(self) -> str | None:
        """``Retry-After`` of the last answer on this thread."""
        return getattr(self._last, "retry_after", None)


def transport_errors() -> tuple[type[BaseException], ...]:
    """The ``requests`` exceptions that mean no usable answer arrived."""
    return (requests.ConnectionError, requests.Timeout)
