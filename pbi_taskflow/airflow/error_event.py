"""An error carried across the deferral boundary: the trigger's event names its class and fields as plain JSON.

The trigger records the class as a dotted path and the public fields (message, status, code,
request id, workspace, dataset, and where the class has them the app registration and tenant ids,
``Retry-After`` seconds and name candidates; never credentials). The task rebuilds the same exception class, so
fail-fast handling and notifiers treat an error met while deferred exactly like one met in the
worker. Only classes of :mod:`pbi_taskflow.errors` are rebuilt; any other path (unknown, or outside
that module) falls back to :class:`~pbi_taskflow.errors.PowerBIError`, and nothing is ever imported
from the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pbi_taskflow import errors
from pbi_taskflow.errors import (
    AuthenticationError,
    NameResolutionError,
    PowerBIError,
    RefreshError,
    RefreshFailedError,
    ThrottledError,
)

#: The module whose classes an event may name.
_MODULE = errors.__name__
#: The fields copied to and from the event (all plain JSON values).
FIELDS = ("message", "status", "code", "request_id", "workspace", "dataset")


#: Fields only some classes have: ``{class: {field: kind}}``.
CLASS_FIELDS: dict[type[PowerBIError], dict[str, str]] = {
    AuthenticationError: {"client_id": "str", "tenant_id": "str"},
    ThrottledError: {"retry_after": "number"},
    NameResolutionError: {"candidates": "candidates"},
}


def _plain(value: Any, kind: str) -> Any:
    """``value`` as the plain JSON of ``kind``, or None when it is not one."""
    if value is None:
        return None
    if kind == "number":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "candidates":
        if not isinstance(value, (list, tuple)):
            return None
        return [{str(k): str(v) for k, v in item.items()} for item in value if isinstance(item, Mapping)]
    return str(value)


def _class_fields(cls: type[PowerBIError]) -> dict[str, str]:
    out: dict[str, str] = {}
    for base, fields in CLASS_FIELDS.items():
        if issubclass(cls, base):
            out.update(fields)
    return out


def error_to_event(exc: PowerBIError) -> dict[str, Any]:
    """The plain-JSON description of ``exc`` put in the trigger's ``error`` event."""
    cls = type(exc)
    path = f"{cls.__module__}.{cls.__qualname__}"
    fields: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(exc, name, None)
        if name == "status":
            fields[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
        else:
            fields[name] = None if value is None else str(value)
    for name, kind in _class_fields(cls).items():
        fields[name] = _plain(getattr(exc, name, None), kind)
    return {"class": path, "fields": fields}


def error_class(path: Any) -> type[PowerBIError]:
    """The class of :mod:`pbi_taskflow.errors` named by ``path``; :class:`PowerBIError` for anything else."""
    if not isinstance(path, str):
        return PowerBIError
    module, _, name = path.rpartition(".")
    if module != _MODULE or name not in errors.__all__:
        return PowerBIError
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, PowerBIError):
        return cls
    return PowerBIError


def error_from_event(data: Any, fallback_message: str) -> PowerBIError:
    """Rebuild the exception described by :func:`error_to_event` (``fallback_message`` if it has none)."""
    info = data if isinstance(data, Mapping) else {}
    raw = info.get("fields")
    fields = raw if isinstance(raw, Mapping) else {}
    message = fields.get("message")
    status = fields.get("status")
    kwargs: dict[str, Any] = {
        name: str(fields[name]) for name in FIELDS[2:] if fields.get(name) is not None
    }
    if isinstance(status, int) and not isinstance(status, bool):
        kwargs["status"] = status
    cls = error_class(info.get("class"))
    for name, kind in _class_fields(cls).items():
        value = _plain(fields.get(name), kind)
        if value is not None:
            kwargs[name] = value
    return cls(message if isinstance(message, str) and message else fallback_message, **kwargs)


def trigger_error(event: Mapping[str, Any], results: list[dict[str, Any]]) -> PowerBIError:
    """The exception behind a trigger's ``error`` event; a :class:`RefreshError` gets ``results``.

    An event without ``error_detail`` (from an older trigger) gives a :class:`RefreshFailedError` of its text.
    """
    text = str(event.get("error") or "The Power BI trigger failed.")
    if "error_detail" not in event:
        return RefreshFailedError(text, results=list(results))
    error = error_from_event(event["error_detail"], text)
    if isinstance(error, RefreshError):
        error.results = list(results)
    return error


__all__ = ["CLASS_FIELDS", "FIELDS", "error_class", "error_from_event", "error_to_event", "trigger_error"]
