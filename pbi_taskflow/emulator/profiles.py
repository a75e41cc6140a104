"""Emulated service principal profiles, the way multi-tenant apps (ISVs) keep each customer's workspaces apart.

A profile belongs to one app (service principal). A call carrying ``X-PowerBI-Profile-Id`` acts as that profile: it
sees only the profile's workspaces (``add_workspace(..., profile=...)``); a call without the header acts as the app
itself and sees only workspaces that belong to no profile. The header does not change the token: Entra ID issues the
app's token, and the profile is chosen per call.

Answers where Power BI's behaviour is not documented (also in docs/testing.md):

- a profile id that is not a GUID answers 400 ``InvalidRequest``;
- an unknown profile, or one of another app, answers 401 ``PowerBINotAuthorizedException`` (Microsoft documents only
  that a wrong profile header gives an unauthorized error);
- ``GET /profiles`` and ``GET /profiles/{id}`` are the app's own calls: with a profile header they answer 401 too.

This module also registers the routes of :mod:`pbi_taskflow.emulator.gateways` with the Power BI part.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pbi_taskflow.emulator.state import PowerBIState, check_guid, new_id
from pbi_taskflow.emulator.wire import Request, Response, json_response

if TYPE_CHECKING:
    from pbi_taskflow.emulator.powerbi import PowerBI

HEADER = "x-powerbi-profile-id"


@dataclasses.dataclass
class ProfileState:
    """A service principal profile of the app ``owner`` (a client id)."""

    id: str
    name: str
    owner: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "display_name": self.name, "owner": self.owner}


def _route(suffix: str) -> re.Pattern[str]:
    return re.compile(rf"^/v1\.0/myorg{suffix}/?$", re.IGNORECASE)


PROFILE_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    ("GET", "profiles", _route("/profiles")),
    ("GET", "profile", _route("/profiles/(?P<p>[^/]+)")),
]
PROFILE_ENDPOINTS = frozenset({"profiles", "profile"})


def _refused(message: str) -> Response:
    return json_response(401, {"error": {"code": "PowerBINotAuthorizedException", "message": message, "pbi.error": {
        "code": "PowerBINotAuthorizedException", "parameters": {}, "details": [], "exceptionCulprit": 1}}})


def check_profile(state: PowerBIState, request: Request) -> Response | None:
    """Set ``request.profile`` from its header: ``None`` when the call may go on, else the answer refusing it.

    Called once the bearer token is valid (``request.caller`` is set).
    """
    raw = request.headers.get(HEADER)
    if raw is None or not raw.strip():
        return None
    try:
        profile_id = str(uuid.UUID(raw.strip()))
    except ValueError:
        return json_response(400, {"error": {"code": "InvalidRequest", "message": f"The X-PowerBI-Profile-Id header "
                                             f"{raw!r} is not a service principal profile id (a GUID)."}})
    with state.lock:
        profile = state.profiles.get(profile_id)
    if profile is None or profile.owner != (request.caller or "").lower():
        return _refused(f"Service principal profile {profile_id} does not exist or does not belong to the calling "
                        "service principal.")
    request.profile = profile_id
    return None


def profile_json(profile: ProfileState) -> dict[str, Any]:
    """A profile as ``GET /profiles`` lists it (swagger ``ServicePrincipalProfile``)."""
    return {"id": profile.id, "displayName": profile.name}


class ProfileAPI:
    """``GET /profiles`` and ``GET /profiles/{id}``: the calling app's profiles."""

    def __init__(self, powerbi: PowerBI) -> None:
        self.powerbi = powerbi

    def _own(self, request: Request) -> list[ProfileState] | Response:
        if request.profile is not None:
            return _refused("Service principal profiles are listed by the service principal itself; send the call "
                            "without X-PowerBI-Profile-Id.")
        caller = (request.caller or "").lower()
        return [p for p in self.powerbi.state.profiles.values() if p.owner == caller]

    def list(self, request: Request, params: dict[str, str]) -> Response:
        own = self._own(request)
        if isinstance(own, Response):
            return own
        return json_response(200, {"@odata.context": f"{self.powerbi._api_root()}/$metadata#profiles",
                                   "value": [profile_json(p) for p in own]})

    def get(self, request: Request, params: dict[str, str]) -> Response:
        own = self._own(request)
        if isinstance(own, Response):
            return own
        found = next((p for p in own if p.id == params["p"].lower()), None)
        if found is None:
            return json_response(404, {"error": {"code": "PowerBIEntityNotFound", "message": f"Profile {params['p']} "
                                                 "does not exist or does not belong to the calling service principal."}})
        return json_response(200, profile_json(found))


def _extra_routes() -> list[tuple[str, str, re.Pattern[str]]]:
    from pbi_taskflow.emulator.gateways import GATEWAY_ROUTES

    return [*PROFILE_ROUTES, *GATEWAY_ROUTES]


#: the routes of profiles, data sources and gateways, matched before the dataset routes
TENANCY_ROUTES = _extra_routes()


def tenancy_handlers(powerbi: PowerBI) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
    """The handlers of :data:`TENANCY_ROUTES`, by endpoint name."""
    from pbi_taskflow.emulator.gateways import GatewayAPI

    profiles = ProfileAPI(powerbi)
    return {"profiles": profiles.list, "profile": profiles.get, **GatewayAPI(powerbi).handlers()}


class ProfileSeeding:
    """The :class:`~pbi_taskflow.emulator.Emulator` methods that seed service principal profiles."""

    state: PowerBIState
    client_id: str

    def add_profile(self, display_name: str, *, id: str | None = None, client_id: str | None = None) -> dict[str, Any]:
        """Add a service principal profile of the app ``client_id`` (default: the emulator's default app).

        Workspaces added with ``profile=`` (its id or display name) then belong to it: only calls with its
        ``X-PowerBI-Profile-Id`` see them.
        """
        with self.state.lock:
            profile = ProfileState(id=check_guid(id or new_id(), "profile id"), name=display_name,
                                   owner=check_guid(client_id or self.client_id, "client id"))
            if profile.id in self.state.profiles:
                msg = f"A profile with id {profile.id} already exists in the emulator."
                raise ValueError(msg)
            self.state.profiles[profile.id] = profile
            return profile.to_dict()

    def profiles(self) -> list[dict[str, Any]]:
        """Every emulated profile (id, display name, owning app)."""
        with self.state.lock:
            return [p.to_dict() for p in self.state.profiles.values()]


_PROFILE_KEYS = {"display_name", "id", "client_id"}


def apply_profiles(emu: ProfileSeeding, profiles: Iterable[Any]) -> None:
    """Seed a scenario's ``profiles`` (before its workspaces, which may name them)."""
    from pbi_taskflow.emulator.scenario import _check as check_keys

    for index, raw in enumerate(profiles):
        entry = dict(check_keys(raw, _PROFILE_KEYS, f"profiles[{index}]", ("display_name",)))
        emu.add_profile(entry.pop("display_name"), **entry)


__all__ = ["ProfileSeeding", "ProfileState", "check_profile", "tenancy_handlers"]
