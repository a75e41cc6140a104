"""End-to-end: a real MSAL token, then a standard refresh followed through the history."""

from __future__ import annotations

from typing import Any

from pbi_taskflow.emulator import Emulator


def test_standard_refresh_completes_and_history_matches_request_id(emu: Emulator, api: Any,
                                                                   sales: dict[str, str]) -> None:
    """A standard refresh answers 202 with a RequestId that names the history entry, which completes."""
    posted = api.post(f"{sales['base']}/refreshes", json={"notifyOption": "NoNotification"})
    assert posted.status_code == 202
    request_id = posted.headers["RequestId"]
    entry = api.get(f"{sales['base']}/refreshes", params={"$top": 1}).json()["value"][0]
    assert (entry["requestId"], entry["status"]) == (request_id, "Unknown")
    emu.advance(4.5)
    entry = api.get(f"{sales['base']}/refreshes", params={"$top": 1}).json()["value"][0]
    assert entry["status"] == "Completed"
    assert "endTime" in entry
