"""CA bundles that trust the system's CAs plus the emulator's CA.

``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` (set on many machines and CI images) override the
per-session ``verify`` of requests, so a ``ca_bundle`` in the connection alone is not enough. Tests
point those variables at a combined bundle instead: nothing that worked before stops working, and
the emulator is trusted too.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

__all__ = ["CA_ENV_VARS", "combined_ca_bundle", "system_ca_file"]

#: Environment variables that override certificate verification of requests, curl-like and ssl clients.
CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def system_ca_file() -> str | None:
    """The CA file the environment trusts today (the variables above, OpenSSL's default, or certifi)."""
    for name in CA_ENV_VARS:
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return value
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and Path(cafile).is_file():
        return cafile
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi ships with requests
        return None
    return str(certifi.where())


def combined_ca_bundle(extra_ca: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Write ``target`` = the system CAs + ``extra_ca`` and return its path.

    :param extra_ca: path of a PEM file to trust in addition (the emulator's CA).
    :param target: where to write the combined PEM.
    """
    parts: list[str] = []
    system = system_ca_file()
    if system:
        parts.append(Path(system).read_text(encoding="utf-8", errors="replace").rstrip() + "\n")
    parts.append(Path(extra_ca).read_text(encoding="utf-8").rstrip() + "\n")
    path = Path(target)
    path.write_text("".join(parts), encoding="utf-8")
    return path
