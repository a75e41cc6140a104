"""Request dispatch: route to Entra or Power BI, apply injected faults, record the request log."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import uuid
from http import HTTPStatus
from typing import Any

from pbi_taskflow.emulator.clock import EmulatedClock
from pbi_taskflow.emulator.entra import Entra, aad_error
from pbi_taskflow.emulator.faults import Fault, FaultQueue
from pbi_taskflow.emulator.powerbi import THROTTLED, TOKEN_EXPIRED, PowerBI, not_authorized
from pbi_taskflow.emulator.requestlog import RequestLog, RequestRecord
from pbi_taskflow.emulator.wire import Request, Response, json_response

_DISCOVERY = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration/?$", re.IGNORECASE)
_KEYS = re.compile(r"^/(?P<tenant>[^/]+)/discovery/v2\.0/keys/?$", re.IGNORECASE)
_TOKEN = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token/?$", re.IGNORECASE)
#: Body fields never written to the request log.
SECRET_FIELDS = frozenset({"client_secret", "client_assertion", "assertion", "refresh_token", "password", "code",
                           "access_token", "id_token"})
REDACTED = "***"


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if str(k).lower() in SECRET_FIELDS else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def logged_body(request: Request) -> Any:
    """The request body as the log keeps it: parsed JSON or form fields, secrets redacted (``None`` when empty)."""
    text = request.body.decode("utf-8", "replace").strip()
    if not text:
        return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return _redact(dict(urllib.parse.parse_qsl(text, keep_blank_values=True)))
    try:
        return _redact(json.loads(text.lstrip("\ufeff")))
    except ValueError:
        return {"unparsed": f"<{len(request.body)} bytes>"}


class Dispatcher:
    """Turns a :class:`Request` into a :class:`Response` for the emulator's HTTP server.

    :param entra: the Entra ID endpoints.
    :param powerbi: the Power BI endpoints.
    :param faults: the injected faults to apply.
    :param log: where every request is recorded.
    :param clock: the emulated clock (request times).
    :param stopping: set when the emulator stops (cuts ``slow`` faults short).
    """

    def __init__(self, entra: Entra, powerbi: PowerBI, faults: FaultQueue, log: RequestLog, clock: EmulatedClock,
                 stopping: threading.Event) -> None:
        self.entra, self.powerbi, self.faults, self.log, self.clock = entra, powerbi, faults, log, clock
        self._stopping = stopping

    def _route(self, request: Request) -> tuple[str, dict[str, str]]:
        """The endpoint name and path parameters (``unknown`` for paths the emulator does not serve)."""
        match = _DISCOVERY.match(request.path)
        if match and request.method == "GET":
            return "discovery", match.groupdict()
        match = _TOKEN.match(request.path)
        if match and request.method == "POST":
            return "token", match.groupdict()
        match = _KEYS.match(request.path)
        if match and request.method == "GET":
            return "keys", match.groupdict()
        return self.powerbi.route(request.method, request.path) or ("unknown", {})

    def _answer(self, endpoint: str, request: Request, params: dict[str, str], *, lost: bool) -> Response:
        if endpoint == "discovery":
            return self.entra.discovery(request, params["tenant"])
        if endpoint == "token":
            return self.entra.token(request, params["tenant"])
        if endpoint == "keys":
            return self.entra.keys(request, params["tenant"])
        if endpoint == "unknown":
            message = f"The emulator has no route for {request.method} {request.path}."
            return json_response(404, {"error": {"code": "NotFound", "message": message}})
        return self.powerbi.handle("refresh_post_lost" if lost and endpoint == "refresh_post" else endpoint,
                                   request, params)

    def _fault_response(self, endpoint: str, fault: Fault) -> Response | None:
        entra = endpoint in ("discovery", "token")
        if fault.kind == "slow":
            self._stopping.wait(fault.delay)
            return None
        if fault.kind == "throttle":
            retry = f"{fault.retry_after:g}"
            if entra:
                return aad_error(429, "temporarily_unavailable", 90055, "TenantThrottlingError: There are too "
                                 f"many incoming requests. Retry in {retry} seconds.", headers={"Retry-After": retry})
            return json_response(429, {"message": THROTTLED.format(retry)}, {"Retry-After": retry})
        if fault.kind == "error":
            phrase = HTTPStatus(fault.status).phrase if fault.status in HTTPStatus._value2member_map_ else "Error"
            if entra:
                return aad_error(fault.status, "temporarily_unavailable", 90006, f"{phrase} (emulated outage).")
            if fault.status == 401:
                return not_authorized()
            code = phrase.title().replace(" ", "").replace("-", "")
            return json_response(fault.status, {"error": {"code": code, "message": f"{phrase} (emulated fault)."}})
        if fault.kind == "expired_token":
            return json_response(403, TOKEN_EXPIRED)
        if fault.kind == "drop":
            return Response(0, drop=True)
        return None  # drop_after / lost / race / race_drop: answered by the handler or the dispatcher

    def _caller(self, endpoint: str, request: Request) -> str | None:
        if endpoint == "token":
            return request.form().get("client_id") or None
        if endpoint in ("discovery", "keys", "unknown"):
            return None
        return self.powerbi.caller_of(request)

    def __call__(self, request: Request) -> Response:
        now, real = self.clock.now(), time.time()
        endpoint, params = self._route(request)
        fault = self.faults.take(endpoint, params.get("d"), params.get("g")) if endpoint != "unknown" else None
        response = self._fault_response(endpoint, fault) if fault is not None else None
        if fault is not None and fault.kind in ("race", "race_drop"):
            if fault.kind == "race_drop":  # the request is lost unanswered; a foreign refresh starts meanwhile
                response = Response(0, drop=True)
            self.powerbi.start_foreign(params, fault.refresh_type, fault.duration)
        if response is None:
            try:
                lost = fault is not None and fault.kind == "lost"
                response = self._answer(endpoint, request, params, lost=lost)
            except Exception as exc:  # noqa: BLE001 - a bug in the emulator must still answer, not hang the client
                response = json_response(500, {"error": {"code": "EmulatorError", "message": repr(exc)}})
            if fault is not None and fault.kind == "drop_after":
                response.drop = True
        request_id = response.headers.setdefault("RequestId", str(uuid.uuid4()))
        self.log.add(RequestRecord(request.method, request.path, "&".join(f"{k}={v}" for k, v in
                                   request.query.items()), endpoint, None if response.drop else response.status,
                                   now, real, fault.kind if fault else None, request_id, logged_body(request),
                                   self._caller(endpoint, request), request.headers.get("x-powerbi-profile-id")))
        return response
