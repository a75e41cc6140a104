"""Validation of a refresh POST body: standard (``notifyOption`` only) or enhanced (any other field)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any

NOTIFY_OPTIONS = ("NoNotification", "MailOnFailure", "MailOnCompletion")
TYPES = ("Full", "ClearValues", "Calculate", "DataOnly", "Automatic", "Defragment")
COMMIT_MODES = ("Transactional", "PartialBatch")
ENHANCED_FIELDS = ("type", "commitMode", "maxParallelism", "retryCount", "objects", "applyRefreshPolicy",
                   "effectiveDate", "timeout")
_TIMEOUT = re.compile(r"^(\d{1,2}):([0-5]\d):([0-5]\d)$")


class BodyError(ValueError):
    """The refresh request body is invalid; the message says which field and what is expected."""


@dataclasses.dataclass
class RefreshBody:
    """A validated refresh request.

    :param enhanced: any field other than ``notifyOption`` was sent.
    :param options: enhanced options, canonical casing (``type``, ``commitMode``, ``objects``, ...).
    :param timeout: the enhanced ``timeout`` in seconds, when sent.
    """

    enhanced: bool
    options: dict[str, Any]
    timeout: float | None = None


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if isinstance(value, str):
        for item in allowed:
            if item.lower() == value.lower():
                return item
    msg = f"Invalid value {value!r} for '{field}'; expected one of {', '.join(allowed)}."
    raise BodyError(msg)


def _int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"Invalid value {value!r} for '{field}'; expected an integer >= {minimum}."
        raise BodyError(msg)
    return value


def _objects(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        msg = "'objects' must be a non-empty list of {\"table\": ..., \"partition\": ...} objects."
        raise BodyError(msg)
    result = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("table"), str) or set(item) - {"table", "partition"}:
            msg = f"Invalid refresh object {item!r}; expected {{\"table\": \"T\"}} or {{\"table\": \"T\", " \
                  "\"partition\": \"P\"}."
            raise BodyError(msg)
        if "partition" in item and not isinstance(item["partition"], str):
            msg = f"Invalid partition in {item!r}; expected a string."
            raise BodyError(msg)
        result.append(dict(item))
    return result


def _timeout(value: Any) -> float:
    match = _TIMEOUT.match(value) if isinstance(value, str) else None
    if not match:
        msg = f"Invalid value {value!r} for 'timeout'; expected a duration \"hh:mm:ss\" (e.g. \"02:00:00\")."
        raise BodyError(msg)
    hours, minutes, seconds = (int(g) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 0 < total <= 24 * 3600:
        msg = f"Invalid value {value!r} for 'timeout'; it must be more than 0 and at most 24:00:00."
        raise BodyError(msg)
    return float(total)


def _effective_date(value: Any) -> str:
    try:
        dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        msg = f"Invalid value {value!r} for 'effectiveDate'; expected an ISO 8601 date or date-time."
        raise BodyError(msg) from None
    return str(value)


def parse_refresh_body(raw: bytes) -> RefreshBody:
    """Parse and validate a refresh POST body (``BodyError`` with a precise message when invalid)."""
    text = raw.decode("utf-8-sig", "replace").strip()
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        msg = "The refresh request body is not valid JSON."
        raise BodyError(msg) from None
    if not isinstance(body, dict):
        msg = "The refresh request body must be a JSON object."
        raise BodyError(msg)
    unknown = sorted(set(body) - {"notifyOption", *ENHANCED_FIELDS})
    if unknown:
        msg = f"Unknown refresh request field(s) {unknown}; known fields: notifyOption, {', '.join(ENHANCED_FIELDS)}."
        raise BodyError(msg)
    enhanced = [k for k in ENHANCED_FIELDS if k in body]
    if enhanced and "notifyOption" in body:
        msg = f"notifyOption is not applicable to enhanced refresh requests (fields {enhanced}); send either " \
              "notifyOption alone (standard refresh) or the enhanced fields without notifyOption."
        raise BodyError(msg)
    if not enhanced:
        if "notifyOption" in body:
            _choice(body["notifyOption"], NOTIFY_OPTIONS, "notifyOption")
        return RefreshBody(enhanced=False, options={})
    options: dict[str, Any] = {"type": "Automatic", "commitMode": "Transactional"}
    converters = {
        "type": lambda v: _choice(v, TYPES, "type"),
        "commitMode": lambda v: _choice(v, COMMIT_MODES, "commitMode"),
        "maxParallelism": lambda v: _int(v, "maxParallelism", 1),
        "retryCount": lambda v: _int(v, "retryCount", 0),
        "objects": _objects,
        "applyRefreshPolicy": lambda v: v if isinstance(v, bool) else _choice(v, ("true", "false"),
                                                                               "applyRefreshPolicy"),
        "effectiveDate": _effective_date,
        "timeout": _timeout,
    }
    for field in enhanced:
        options[field] = converters[field](body[field])
    timeout = options.pop("timeout", None)
    return RefreshBody(enhanced=True, options=options, timeout=timeout)
