"""A local HTTPS Power BI REST + Entra ID emulator for tests, demos and development.

``from pbi_taskflow.emulator import Emulator`` is cheap: the TLS, JWT and server machinery load on
:meth:`Emulator.start`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbi_taskflow.emulator.ca import ClientCertificate as ClientCertificate
    from pbi_taskflow.emulator.ca import make_client_certificate as make_client_certificate
    from pbi_taskflow.emulator.server import Emulator as Emulator

__all__ = ["ClientCertificate", "Emulator", "make_client_certificate"]

_LAZY = {
    "Emulator": "pbi_taskflow.emulator.server",
    "ClientCertificate": "pbi_taskflow.emulator.ca",
    "make_client_certificate": "pbi_taskflow.emulator.ca",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'pbi_taskflow.emulator' has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
