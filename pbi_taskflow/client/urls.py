"""URL checks shared by the credentials and both clients: https everywhere except loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pbi_taskflow.errors import ConfigurationError


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, ``127.0.0.0/8`` or ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str, what: str, *, allow_loopback_http: bool = True) -> str:
    """Return ``url`` without a trailing slash, or raise when it is not https.

    Plain http is accepted only for loopback addresses, and only when ``allow_loopback_http`` is true
    (a test server of the library's own tests); connection settings refuse it, since Power BI, Entra ID
    and the emulator all speak https.

    :raises ConfigurationError: for a malformed URL or a non-https URL.
    """
    if not isinstance(url, str) or not url.strip():
        msg = f"Missing {what}: expected an https URL."
        raise ConfigurationError(msg)
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        msg = f"Invalid {what} {url!r}: expected an absolute https URL such as 'https://api.powerbi.com/v1.0/myorg'."
        raise ConfigurationError(msg)
    if parts.scheme == "http" and is_loopback(url) and not allow_loopback_http:
        msg = (
            f"Refusing plain-http {what} {url!r}: Power BI, Entra ID and the bundled emulator answer https only, so "
            f"every call would fail after its retries. Use {'https' + url[len('http'):]!r}."
        )
        raise ConfigurationError(msg)
    if parts.scheme == "http" and not is_loopback(url):
        msg = (
            f"Refusing plain-http {what} {url!r}: tokens and data must travel over TLS. Use an https URL."
        )
        raise ConfigurationError(msg)
    return url
