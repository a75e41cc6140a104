"""Emulated service principal profiles: a profile header shows only that profile's workspaces, an unknown or foreign
profile is refused, the profiles API lists the app's own; seeded from the Python API and a scenario; every body
validates against Microsoft's swagger."""

from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator

from .helpers import token
from .test_swagger import _check, swagger

__all__ = ["swagger"]

HEADER = "X-PowerBI-Profile-Id"


@pytest.fixture
def estate(emu: Emulator) -> dict[str, Any]:
    """Two customers' profiles, each with a workspace named Finance, and the app's own workspace."""
    contoso = emu.add_profile("Contoso")
    fabrikam = emu.add_profile("Fabrikam")
    own = emu.add_workspace("Operations")
    c_ws = emu.add_workspace("Finance", profile="Contoso")
    f_ws = emu.add_workspace("Finance", profile=fabrikam["id"])
    emu.add_dataset(c_ws["id"], "Sales")
    return {"contoso": contoso, "fabrikam": fabrikam, "own": own, "c_ws": c_ws, "f_ws": f_ws}


def _names(api: Any, emu: Emulator, profile: str | None) -> list[tuple[str, str]]:
    headers = {HEADER: profile} if profile else {}
    answer = api.get(f"{emu.api_root}/groups", headers=headers)
    assert answer.status_code == 200, answer.text
    return [(g["name"], g["id"]) for g in answer.json()["value"]]


def test_a_profile_sees_only_its_workspaces_and_the_app_only_its_own(
        swagger: dict[str, Any], emu: Emulator, api: Any, estate: dict[str, Any]) -> None:
    assert _names(api, emu, None) == [("Operations", estate["own"]["id"])]
    assert _names(api, emu, estate["contoso"]["id"]) == [("Finance", estate["c_ws"]["id"])]
    assert _names(api, emu, estate["fabrikam"]["id"].upper()) == [("Finance", estate["f_ws"]["id"])]
    contoso = {HEADER: estate["contoso"]["id"]}
    datasets = api.get(f"{emu.api_root}/groups/{estate['c_ws']['id']}/datasets", headers=contoso)
    _check(swagger, "Datasets", datasets.json())
    # another profile's workspace, or the app's own, is out of reach under a profile (and the other way round)
    assert api.get(f"{emu.api_root}/groups/{estate['f_ws']['id']}/datasets", headers=contoso).status_code == 401
    assert api.get(f"{emu.api_root}/groups/{estate['own']['id']}/datasets", headers=contoso).status_code == 401
    assert api.get(f"{emu.api_root}/groups/{estate['c_ws']['id']}/datasets").status_code == 401


def test_unknown_foreign_and_malformed_profiles_are_refused(swagger: dict[str, Any], emu: Emulator, api: Any,
                                                            estate: dict[str, Any]) -> None:
    other_app = "0b7c1e2a-1111-4222-8333-944455556666"
    emu.add_app(other_app, secret="other-secret")
    theirs = emu.add_profile("Theirs", client_id=other_app)
    for profile in ("6d0f1a5e-0000-4000-8000-000000000000", theirs["id"]):
        answer = api.get(f"{emu.api_root}/groups", headers={HEADER: profile})
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "PowerBINotAuthorizedException"
        _check(swagger, "PowerBIApiErrorResponseDetail", answer.json()["error"])
    malformed = api.get(f"{emu.api_root}/groups", headers={HEADER: "contoso"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "InvalidRequest"
    # the other app sees its own profile
    other = {"Authorization": f"Bearer {token(emu, 'other-secret', client_id=other_app)}", HEADER: theirs["id"]}
    assert api.get(f"{emu.api_root}/groups", headers=other).status_code == 200


def test_the_profiles_api_lists_the_apps_own_profiles(swagger: dict[str, Any], emu: Emulator, api: Any,
                                                      estate: dict[str, Any]) -> None:
    listing = api.get(f"{emu.api_root}/profiles")
    assert listing.status_code == 200
    _check(swagger, "ServicePrincipalProfiles", listing.json())
    assert {p["displayName"] for p in listing.json()["value"]} == {"Contoso", "Fabrikam"}
    one = api.get(f"{emu.api_root}/profiles/{estate['contoso']['id']}")
    _check(swagger, "ServicePrincipalProfile", one.json())
    assert one.json() == {"id": estate["contoso"]["id"], "displayName": "Contoso"}
    assert api.get(f"{emu.api_root}/profiles/6d0f1a5e-0000-4000-8000-000000000000").status_code == 404
    as_profile = api.get(f"{emu.api_root}/profiles", headers={HEADER: estate["contoso"]["id"]})
    assert as_profile.status_code == 401


def test_the_request_log_keeps_each_calls_profile_header(emu: Emulator, api: Any, estate: dict[str, Any]) -> None:
    emu.log.clear()
    _names(api, emu, estate["contoso"]["id"])
    _names(api, emu, None)
    assert [r.profile_id for r in emu.requests if r.endpoint == "groups"] == [estate["contoso"]["id"], None]


def test_profiles_and_their_workspaces_seed_from_a_scenario(emu: Emulator, api: Any) -> None:
    emu.seed({"profiles": [{"display_name": "Contoso", "id": "6d0f1a5e-0000-4000-8000-0000000000c0"}],
              "workspaces": [{"name": "Finance", "profile": "Contoso", "datasets": [{"name": "Sales"}]},
                             {"name": "Operations"}]})
    assert [n for n, _ in _names(api, emu, "6d0f1a5e-0000-4000-8000-0000000000c0")] == ["Finance"]
    assert [n for n, _ in _names(api, emu, None)] == ["Operations"]
    with pytest.raises(ValueError, match="Unknown key"):
        emu.seed({"profiles": [{"display_name": "X", "tenant": "y"}]})
    with pytest.raises(ValueError, match="No emulated profile 'Nobody'"):
        emu.add_workspace("Orphan", profile="Nobody")
    emu.reset()
    assert emu.profiles() == []
