"""The exception tree of pbi_taskflow, rooted at :class:`PowerBIError`.

Every exception carries what a person needs to act: the HTTP status, the Power BI or Entra error
code, the request (or correlation) id, and the workspace and dataset when known. All of them
pickle, because Airflow moves exceptions between processes.
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class PowerBIError(Exception):
    """Base class of every error raised by pbi_taskflow.

    :param message: what went wrong, what was expected and what to do.
    :param status: the HTTP status, when the error came from an HTTP answer.
    :param code: the Power BI error code (``ItemNotFound``) or Entra code (``AADSTS7000222``).
    :param request_id: Power BI ``RequestId`` header or Entra correlation id, for support tickets.
    :param workspace: the workspace (name or id) concerned, when known.
    :param dataset: the dataset (name or id) concerned, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        workspace: str | None = None,
        dataset: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.workspace = workspace
        self.dataset = dataset

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.code:
            details.append(f"code {self.code}")
        if self.request_id:
            details.append(f"request id {self.request_id}")
        if details:
            parts.append(f"[{', '.join(details)}]")
        return " ".join(parts)


# --- configuration and input -------------------------------------------------------------------


class ConfigurationError(PowerBIError, ValueError):
    """Invalid options, connection fields or refresh parameters, found before any HTTP call."""


class WorkspaceNotAllowedError(ConfigurationError):
    """The connection's allow-list of workspaces does not include the requested workspace."""


class NameResolutionError(PowerBIError, LookupError):
    """A workspace or dataset name could not be resolved to exactly one id."""

    def __init__(self, message: str, *, candidates: list[dict[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.candidates = candidates or []


class UnknownNameError(NameResolutionError):
    """No workspace or dataset has that name; ``candidates`` lists the closest names."""


class AmbiguousNameError(NameResolutionError):
    """Several workspaces or datasets share that name; ``candidates`` lists each with its id."""


# --- authentication ---------------------------------------------------------------------------


class AuthenticationError(PowerBIError):
    """Entra ID refused to issue a token. ``code`` is the ``AADSTS`` code, ``request_id`` the correlation id."""

    def __init__(self, message: str, *, client_id: str | None = None, tenant_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.client_id = client_id
        self.tenant_id = tenant_id


class SecretExpiredError(AuthenticationError):
    """AADSTS7000222: the client secret has expired."""


class InvalidSecretError(AuthenticationError):
    """AADSTS7000215: the client secret is wrong (often the secret's id was used instead of its value)."""


class UnknownClientError(AuthenticationError):
    """AADSTS700016: no application with that client id exists in the tenant."""


class UnknownTenantError(AuthenticationError):
    """AADSTS90002: the tenant does not exist."""


class FederatedCredentialError(AuthenticationError):
    """AADSTS70021 and relatives: no federated identity credential matches the presented assertion."""


class CertificateError(AuthenticationError):
    """The certificate credential is unusable or was rejected (bad PEM, unknown thumbprint, bad signature)."""


# --- Power BI HTTP answers --------------------------------------------------------------------


class PowerBIHTTPError(PowerBIError):
    """Power BI answered with an error status."""


class InvalidRequestError(PowerBIHTTPError):
    """400: Power BI rejected the request body or parameters."""


class RefreshAlreadyRunningError(InvalidRequestError):
    """400 ``InvalidRequest``: another refresh of this dataset is already executing."""


class RefreshQuotaExceededError(InvalidRequestError):
    """The daily refresh quota of the dataset's capacity is used up (8 a day on shared capacity)."""


class EnhancedRefreshNotSupportedError(InvalidRequestError):
    """Enhanced refresh options were requested on a dataset that is not on a Premium/Fabric capacity."""


class PermissionDeniedError(PowerBIHTTPError):
    """401/403: the service principal may not call this API or is not a member of the workspace."""


class TokenExpiredError(PermissionDeniedError):
    """403 ``TokenExpired``: the access token expired; the client renews it once and retries."""


class StatusReadDeniedError(PermissionDeniedError):
    """Power BI kept refusing the status reads of a running refresh; the refresh stays recorded for the retry."""


class NotFoundError(PowerBIHTTPError):
    """404: the workspace, dataset or refresh does not exist or is not visible to this principal."""


class ThrottledError(PowerBIHTTPError):
    """429: too many requests. ``retry_after`` is the wait Power BI asked for, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(PowerBIHTTPError):
    """5xx: Power BI failed; transient, retried on idempotent calls."""


class TransportError(PowerBIError):
    """The connection failed or timed out before an answer arrived."""


class AmbiguousRefreshRequestError(PowerBIError):
    """A refresh request may have reached Power BI but its answer was lost (dropped connection, timeout, 5xx).

    The request is never sent again blindly: the refresh history is read until the refresh shows up
    (it is then followed) or the appearance grace passes.

    :param requested_at: ISO-8601 UTC time the request was sent.
    """

    def __init__(self, message: str, *, requested_at: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.requested_at = requested_at


# --- refresh outcomes -------------------------------------------------------------------------


class RefreshError(PowerBIError):
    """One or more refreshes did not complete. ``results`` holds every dataset's result as a dict."""

    def __init__(self, message: str, *, results: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.results = results or []


class RefreshFailedError(RefreshError):
    """A refresh ended Failed, Cancelled, Disabled or TimedOut in Power BI."""


class RefreshTimeoutError(RefreshError):
    """pbi_taskflow stopped waiting because the task's ``timeout`` passed."""


class RefreshNotRecordedError(PowerBIError):
    """A refresh request was not sent because the task could not record it first (see the task's ledger).

    A retry that did not know about a request sent without a record would send a second one.
    """


class PreflightFailedError(PowerBIError):
    """A pre-flight check found a dataset that cannot refresh (a data source without credentials, not bound to a
    gateway, or whose gateway is offline); no refresh was started. ``problems`` lists each finding and its fix."""

    def __init__(self, message: str, *, problems: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.problems = problems or []


class RefreshOutcomeUnknownError(PowerBIError):
    """A refresh request got no usable answer and no refresh appeared in the history within the grace period.

    The request is not sent again in the same try (it might have started a refresh that shows up late);
    a retry of the task looks at the history once more before it sends a new request.
    """


# --- lineage ----------------------------------------------------------------------------------


class LineageError(ConfigurationError):
    """The lineage of a lineage-ordered refresh (``upstream="order"`` or ``"refresh"``) could not be read.

    An upstream dataflow lives in a workspace the connection may not use, or Power BI refused (401/403) or did not
    find (404) a lineage read. The message names the item, its workspace and the fix: allow the workspace (or grant
    the service principal access to it), or use ``upstream="order"``/``"ignore"``. No refresh was started.
    """


class LineageCycleError(ConfigurationError):
    """The lineage of a lineage-ordered refresh holds a cycle, so no order exists; no refresh was started.

    :param cycle: the items of the cycle in data-flow order (each feeds the next), the first repeated at the end,
        as ``dataflow 'A' (Finance)``.
    """

    def __init__(self, message: str, *, cycle: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.cycle = cycle or []


__all__ = [
    "AmbiguousNameError",
    "AmbiguousRefreshRequestError",
    "AuthenticationError",
    "CertificateError",
    "ConfigurationError",
    "EnhancedRefreshNotSupportedError",
    "FederatedCredentialError",
    "InvalidRequestError",
    "InvalidSecretError",
    "LineageCycleError",
    "LineageError",
    "NameResolutionError",
    "NotFoundError",
    "PermissionDeniedError",
    "PowerBIError",
    "PowerBIHTTPError",
    "PreflightFailedError",
    "RefreshAlreadyRunningError",
    "RefreshError",
    "RefreshFailedError",
    "RefreshNotRecordedError",
    "RefreshOutcomeUnknownError",
    "RefreshQuotaExceededError",
    "RefreshTimeoutError",
    "SecretExpiredError",
    "ServerError",
    "StatusReadDeniedError",
    "ThrottledError",
    "TokenExpiredError",
    "TransportError",
    "UnknownClientError",
    "UnknownNameError",
    "UnknownTenantError",
    "WorkspaceNotAllowedError",
]
