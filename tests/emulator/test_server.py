"""Emulator lifecycle: loopback-only binding, connection facts, bounded and complete shutdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from pbi_taskflow.emulator import Emulator


def test_binds_loopback_only_and_exposes_connection_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener is on 127.0.0.1; url, authority, api_root and the Airflow connection agree with each other."""
    with Emulator(tenant_id="AAAAAAAA-0000-0000-0000-000000000001") as emu:
        assert emu._started().server_address[0] == "127.0.0.1"
        assert emu.url == f"https://127.0.0.1:{emu.port}"
        assert emu.authority_host == emu.url
        assert emu.authority == f"{emu.url}/aaaaaaaa-0000-0000-0000-000000000001"
        assert emu.api_root == f"{emu.url}/v1.0/myorg"
        conn = json.loads(emu.airflow_conn_json())
        assert conn == emu.airflow_conn()
        assert conn["extra"] == {"tenant_id": emu.tenant_id, "authority_host": emu.url, "api_root": emu.api_root,
                                 "ca_bundle": emu.ca_bundle}
        assert emu.settings()["login"] == emu.client_id
        assert emu.client_secret not in repr(emu)


def test_facts_need_a_running_emulator() -> None:
    """Reading url before start() raises a RuntimeError that says how to start it."""
    with pytest.raises(RuntimeError, match="start"):
        _ = Emulator().url


def test_stop_cuts_pooled_connections_and_is_idempotent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """After stop() a kept-alive client connection gets no answer, and stop() can be called twice."""
    emu = Emulator().start()
    bundle = tmp_path / "ca.pem"
    shutil.copy(emu.ca_bundle, bundle)  # stop() deletes the emulator's own copy
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    session, url = requests.Session(), f"{emu.api_root}/groups"
    assert session.get(url, timeout=10).status_code == 401
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=10)
    emu.stop()
    assert not emu.running


@pytest.mark.parametrize("kwargs", [{"tenant_id": "contoso"}, {"client_id": "my-app"}])
def test_ids_must_be_guids(kwargs: dict[str, str]) -> None:
    """Tenant and client ids that are not GUIDs are refused up front, as Entra would never issue them."""
    with pytest.raises(ValueError, match="GUID"):
        Emulator(**kwargs)


def test_busy_port_fails_start_cleanly(emu_server: Emulator) -> None:
    """Starting on a port already in use raises OSError and leaves the emulator stopped."""
    other = Emulator(port=emu_server.port)
    with pytest.raises(OSError):
        other.start()
    assert not other.running
