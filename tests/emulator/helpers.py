"""Helpers shared by the emulator tests: real MSAL clients pointed at the emulator."""

from __future__ import annotations

from typing import Any

from pbi_taskflow.emulator import Emulator


def msal_app(emu: Emulator, credential: Any = None, *, client_id: str | None = None,
             tenant_id: str | None = None) -> Any:
    """A real MSAL confidential client pointed at the emulator."""
    import msal

    return msal.ConfidentialClientApplication(
        client_id or emu.client_id,
        client_credential=emu.client_secret if credential is None else credential,
        authority=f"{emu.url}/{tenant_id or emu.tenant_id}",
        instance_discovery=False,
    )


def token(emu: Emulator, credential: Any = None, **kwargs: Any) -> str:
    result = msal_app(emu, credential, **kwargs).acquire_token_for_client([emu.scope])
    assert "access_token" in result, result
    return str(result["access_token"])
