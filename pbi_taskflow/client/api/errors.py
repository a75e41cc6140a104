"""Power BI error answers and transport failures as typed exceptions (one place for all of them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pbi_taskflow.client.api.calls import ApiRequest, ApiResponse, header, request_id
from pbi_taskflow.client.models import Handle
from pbi_taskflow.errors import (
    AmbiguousRefreshRequestError,
    EnhancedRefreshNotSupportedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PowerBIError,
    PowerBIHTTPError,
    RefreshAlreadyRunningError,
    RefreshQuotaExceededError,
    ServerError,
    ThrottledError,
    TokenExpiredError,
    TransportError,
)

_PERMISSION_ADVICE = (
    "Check that the Power BI tenant setting 'Service principals can call Fabric public APIs' (formerly 'Allow "
    "service principals to use Power BI APIs') covers this app, and that its service principal is a Member or "
    "Admin of the workspace (Contributor is usually enough to refresh)."
)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def error_details(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from any Power BI error body shape."""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            code = err.get("code")
            message = err.get("message")
            pbi = err.get("pbi.error")
            if isinstance(pbi, Mapping) and not message:
                message = pbi.get("code")
            return (str(code) if code else None, str(message) if message else None)
        message = body.get("message") or body.get("Message")
        return (None, str(message) if message else None)
    if isinstance(body, str) and body.strip():
        return (None, body.strip()[:500])
    return (None, None)


def raise_for_response(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    *,
    workspace: str | None = None,
    dataset: str | None = None,
    operation: str | None = None,
    dataflow: str | None = None,
) -> None:
    """Raise the matching :class:`~pbi_taskflow.errors.PowerBIHTTPError` for an error answer.

    Does nothing for 1xx-3xx. The message names the operation, workspace and dataset; status, Power
    BI code and request id are attached (and printed by ``str()``).
    """
    if status < 400:
        return
    code, message = error_details(body)
    rid = request_id(headers)
    text = (message or "").lower()
    where = _where(workspace, dataset, dataflow)
    said = (message or "no error message").rstrip().rstrip(".")
    head = f"Power BI {operation or 'request'} failed{where}: {said}."
    kw: dict[str, Any] = {"status": status, "code": code, "request_id": rid, "workspace": workspace, "dataset": dataset}
    if "already executing" in text or "already running" in text:
        raise RefreshAlreadyRunningError(
            f"{head} Another refresh of this {'dataflow' if dataflow else 'dataset'} is running; wait for it to finish (or let pbi_taskflow wait "
            "or attach to it with if_running).",
            **kw,
        )
    if "24 hours exceeded" in text or ("exceeded limit" in text and "refresh" in text):
        raise RefreshQuotaExceededError(
            f"{head} The dataset used up its daily refresh quota (8 a day on shared capacity, scheduled refreshes "
            "included); try again tomorrow or move the workspace to a Premium/Fabric capacity.",
            **kw,
        )
    if status == 400 and _mentions_enhanced(code, text):
        raise EnhancedRefreshNotSupportedError(
            f"{head} Enhanced refresh options (tables, partitions, type, commit mode…) need a Premium, PPU, "
            "Embedded or Fabric capacity; drop them for this dataset or move its workspace to such a capacity.",
            **kw,
        )
    if status == 403 and (code or "").lower() == "tokenexpired":
        raise TokenExpiredError(f"{head} The access token expired; a new one is needed.", **kw)
    if status in (401, 403):
        raise PermissionDeniedError(f"{head} The service principal is not allowed to do this. {_PERMISSION_ADVICE}", **kw)
    if status == 404:
        raise NotFoundError(
            f"{head} Check the id, and that the service principal is a member of the workspace (Power BI answers "
            "404 for items it cannot see).",
            **kw,
        )
    if status == 429:
        retry_after = parse_retry_after(header(headers, "Retry-After"))
        raise ThrottledError(f"{head} Power BI is throttling requests.", retry_after=retry_after, **kw)
    if status >= 500:
        raise ServerError(f"{head} Power BI had an internal error; this is usually transient.", **kw)
    if status in (400, 409):
        raise InvalidRequestError(f"{head} Power BI rejected the request.", **kw)
    raise PowerBIHTTPError(head, **kw)


def _mentions_enhanced(code: str | None, text: str) -> bool:
    if code and "enhanced" in code.lower():
        return True
    return "enhanced" in text or "premium" in text or "shared capacity" in text


def _where(workspace: str | None, dataset: str | None, dataflow: str | None = None) -> str:
    parts = []
    if dataset:
        parts.append(f"dataset {dataset!r}")
    if dataflow:
        parts.append(f"dataflow {dataflow!r}")
    if workspace:
        parts.append(f"workspace {workspace!r}")
    return (" for " + " in ".join(parts)) if parts else ""


def is_tls_verification_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (from requests, httpx or ssl) is a failed certificate verification."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if "CERTIFICATE_VERIFY_FAILED" in str(current) or type(current).__name__ == "SSLCertVerificationError":
            return True
        current = current.__cause__ or current.__context__
    return False


def tls_error(what: str, exc: BaseException, **kwargs: Any) -> TransportError:
    """A TLS verification failure: not transient, and the fix is a CA bundle."""
    error = TransportError(
        f"TLS certificate verification failed for {what} ({type(exc).__name__}). If the server uses a private or "
        "test CA, set the connection's ca_bundle to a PEM file that trusts it.",
        **kwargs,
    )
    error.__dict__["transient"] = False
    return error


def transport_error(request: ApiRequest, what: str, exc: BaseException, *, unsent: bool = False) -> TransportError:
    """The error for a call that got no answer (``what``: "timed out", "connection failed").

    :param unsent: the connection could not even be opened, so the request certainly did not arrive.
    """
    where = _where(request.workspace, request.dataset, request.dataflow)
    if is_tls_verification_failure(exc):
        return tls_error(f"Power BI {request.operation}{where}", exc, workspace=request.workspace, dataset=request.dataset)
    error = TransportError(
        f"Power BI {request.operation}{where} {what} before an answer arrived ({type(exc).__name__}); usually transient.",
        workspace=request.workspace,
        dataset=request.dataset,
    )
    error.unsent = unsent  # type: ignore[attr-defined]
    return error


def never_connected(exc: BaseException) -> bool:
    """Whether a transport failure happened while opening the connection (nothing was sent)."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if type(item).__name__ in ("NewConnectionError", "ConnectTimeoutError", "ConnectTimeout", "ConnectError"):
            return True
        if not isinstance(item, BaseException):
            continue
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__,
                     *(a for a in item.args if isinstance(a, BaseException))])
    return False


def ambiguous_request(target: Any, exc: PowerBIError, requested_at: dt.datetime) -> AmbiguousRefreshRequestError:
    """The error for a refresh request that may have arrived although its answer was lost."""
    return AmbiguousRefreshRequestError(
        f"The refresh request for dataset {target.dataset_name!r} in workspace {target.workspace_name!r} may have "
        f"reached Power BI, but its answer was lost: {exc.message}",
        requested_at=requested_at.isoformat(), status=exc.status, code=exc.code, request_id=exc.request_id,
        workspace=target.workspace_name, dataset=target.dataset_name,
    )


def check(response: ApiResponse, request: ApiRequest) -> ApiResponse:
    """Raise for an error answer to ``request``; return the response otherwise."""
    raise_for_response(
        response.status,
        response.headers,
        response.body,
        workspace=request.workspace,
        dataset=request.dataset,
        operation=request.operation,
        dataflow=request.dataflow,
    )
    return response


def not_visible_error(handle: Handle, waited_s: float) -> PowerBIError:
    """The error for a standard refresh that never showed up in history."""
    return NotFoundError(
        f"Refresh {handle.refresh_id} of dataset {handle.dataset_name!r} in workspace {handle.workspace_name!r} "
        f"did not appear in the refresh history within {waited_s:.0f} s. Power BI may have dropped the request "
        "(it drops refresh requests sent in quick succession); trigger the refresh again.",
        request_id=handle.refresh_id,
        workspace=handle.workspace_name,
        dataset=handle.dataset_name,
    )
