"""Fixtures for the emulator tests: one emulator per session, reset before each test, trusted through its CA."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator

from .helpers import token


@pytest.fixture(scope="session")
def emu_server() -> Iterator[Emulator]:
    with Emulator() as server:  # real-time clock; tests jump it with emu.advance()
        yield server


@pytest.fixture
def emu(emu_server: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The session emulator, reset, with ``REQUESTS_CA_BUNDLE`` pointing at its CA (overriding the system bundle)."""
    emu_server.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu_server.ca_cert)  # emulator CA only: these tests reach nothing else
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return emu_server


@pytest.fixture
def api(emu: Emulator) -> Any:
    """A ``requests.Session`` authorised with a token for the default app."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token(emu)}"
    yield session
    session.close()


@pytest.fixture
def sales(emu: Emulator) -> dict[str, str]:
    """A dedicated workspace with one 4 s dataset; returns ids and the dataset's base URL."""
    ws = emu.add_workspace("Sales Analytics")
    ds = emu.add_dataset(ws["id"], "Sales", duration=4.0)
    return {"ws": ws["id"], "ds": ds["id"], "base": f"{emu.api_root}/groups/{ws['id']}/datasets/{ds['id']}"}
