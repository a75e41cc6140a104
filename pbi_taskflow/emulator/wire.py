"""Plain request/response values passed between the HTTP server and the Entra / Power BI handlers."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from typing import Any


@dataclasses.dataclass
class Request:
    """An HTTP request as the handlers see it.

    :param method: upper-case method.
    :param path: the path without the query string.
    :param query: query parameters (last value wins).
    :param headers: header names lower-cased.
    :param body: the raw body.
    :param caller: the client id of the bearer token, once Power BI authorised the request.
    :param profile: the service principal profile it acts as (``X-PowerBI-Profile-Id``), once authorised.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    caller: str | None = None
    profile: str | None = None

    @classmethod
    def parse(cls, method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
        split = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        return cls(method.upper(), split.path, query, {k.lower(): v for k, v in headers.items()}, body)

    def form(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields."""
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        """The body as JSON (``None`` when empty); raises ``ValueError`` when invalid."""
        text = self.body.decode("utf-8-sig").strip()
        return json.loads(text) if text else None


@dataclasses.dataclass
class Response:
    """An HTTP response; ``drop`` closes the connection without sending it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    drop: bool = False


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (``application/json; charset=utf-8``)."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return Response(status, body, all_headers)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    """An empty-bodied response (``application/octet-stream``, as Power BI sends on 202/200 without content)."""
    return Response(status, b"", {"Content-Type": "application/octet-stream", **(headers or {})})
