"""A local HTTPS Power BI REST + Entra ID emulator for tests, demos and development.

Real MSAL and ``requests``/``httpx`` clients use it unchanged::

    with Emulator(time_scale=10) as emu:
        emu.add_workspace("Sales Analytics")
        emu.add_dataset("Sales Analytics", "Sales", duration=30, outcome="Completed")
        emu.inject("history", "throttle", count=1, retry_after=2)
        # REQUESTS_CA_BUNDLE=emu.ca_bundle; MSAL: authority=emu.authority, instance_discovery=False
        ...
        assert emu.count("refresh_post") == 1

From a shell: ``pbi-taskflow emulator [--json]`` (see :mod:`pbi_taskflow.emulator.cli`).
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
