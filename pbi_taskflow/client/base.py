"""What the sync and async Power BI clients share: configuration checks and the standard-refresh rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pbi_taskflow.client import api
from pbi_taskflow.client.auth import Credential
from pbi_taskflow.client.auth._base import check_ca_bundle
from pbi_taskflow.client.clouds import Cloud, get_cloud
from pbi_taskflow.client.durations import APPEARANCE_GRACE
from pbi_taskflow.client.models import (
    Handle,
    HistoryEntry,
    RefreshResult,
    RefreshState,
    RefreshStatus,
    parse_timestamp,
)
from pbi_taskflow.client.retry import RetryPolicy, is_transient, log_retry
from pbi_taskflow.client.settings import check_profile_id
from pbi_taskflow.client.urls import require_https
from pbi_taskflow.errors import ConfigurationError, PowerBIError, ThrottledError

Timeout = float | tuple[float, float]

#: ``$top`` of the history read that looks for a standard refresh.
STATUS_TOP = 10


def utcnow() -> dt.datetime:
    """The current UTC time (aware)."""
    return dt.datetime.now(dt.timezone.utc)


def normalise_timeout(timeout: Timeout | None) -> tuple[float, float]:
    """``(connect, read)`` seconds from a number or a pair."""
    if timeout is None:
        return (10.0, 60.0)
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        pair = (min(10.0, float(timeout)), float(timeout))
    elif isinstance(timeout, tuple) and len(timeout) == 2:
        pair = (float(timeout[0]), float(timeout[1]))
    else:
        msg = f"Invalid timeout {timeout!r}: expected seconds or a (connect, read) pair of seconds."
        raise ConfigurationError(msg)
    if min(pair) <= 0:
        msg = f"Invalid timeout {timeout!r}: seconds must be > 0."
        raise ConfigurationError(msg)
    return pair


def _as(profile_id: str | None) -> str:
    return f"service principal profile {profile_id}" if profile_id else "the service principal itself (no profile)"


class ClientBase:
    """Configuration shared by :class:`~pbi_taskflow.client.sync.PowerBIClient` and the async client."""

    def __init__(
        self,
        *,
        credential: Credential,
        cloud: Cloud | None,
        api_root: str | None,
        timeout: Timeout,
        retry: RetryPolicy | None,
        ca_bundle: str | None,
        conn_id: str | None,
        profile_id: str | None = None,
    ) -> None:
        if credential is None or not callable(getattr(credential, "get_token", None)):
            msg = f"{type(self).__name__} needs a credential with get_token() (see pbi_taskflow.client.auth)."
            raise ConfigurationError(msg)
        self.credential = credential
        self.cloud: Cloud = cloud or getattr(credential, "cloud", None) or get_cloud("public")
        self.api_root = require_https(api_root or self.cloud.api_root, "Power BI API root")
        self.timeout = normalise_timeout(timeout)
        self.retry = retry or RetryPolicy()
        self.ca_bundle = check_ca_bundle(ca_bundle)
        self.conn_id = conn_id
        #: The service principal profile every Power BI call acts as (``X-PowerBI-Profile-Id``), or ``None``: the
        #: service principal itself. Tokens do not depend on it: one token of the app serves all its profiles.
        self.profile_id = check_profile_id(profile_id)
        self.appearance_grace = APPEARANCE_GRACE
        #: How many times Power BI answered 429 to this client (each one was waited out and retried).
        self.throttle_count = 0
        #: 429 answers waited out per dataset, ``{(workspace id, dataset id): [count, seconds waited]}``,
        #: until :meth:`take_throttles` hands them to the task's run.
        self.throttles: dict[tuple[str, str], list[float]] = {}

    def on_retry(self, exc: BaseException, wait: float, ids: tuple[str, str] | None = None) -> None:
        """Count a throttled answer (called before each retry wait); ``ids``: the dataset the call was about."""
        if isinstance(exc, ThrottledError):
            self.throttle_count += 1
            if ids:
                entry = self.throttles.setdefault(ids, [0, 0.0])
                entry[0] += 1
                entry[1] += max(0.0, wait)

    def take_throttles(self) -> dict[tuple[str, str], list[float]]:
        """The per-dataset throttling recorded since the last call (and forget it)."""
        taken, self.throttles = self.throttles, {}
        return taken

    def start_retry_wait(self, exc: PowerBIError, attempt: int, request: api.ApiRequest, requested_at: dt.datetime,
                         ambiguous: Callable[[PowerBIError, dt.datetime], PowerBIError]) -> float:
        """Seconds to wait before sending again a request that starts a refresh, after ``exc`` (attempt ``attempt``).

        Only a request that certainly did not arrive (throttled, or the connection could not be opened) is sent
        again, while attempts remain; otherwise ``exc`` is raised, or ``ambiguous(exc, requested_at)`` when the
        request may have arrived although its answer was lost (the caller then looks for the refresh it may have
        started instead of risking a second one).
        """
        if not is_transient(exc):
            raise exc
        if not (isinstance(exc, ThrottledError) or getattr(exc, "unsent", False)):
            raise ambiguous(exc, requested_at) from exc
        if attempt >= self.retry.attempts:
            raise exc
        wait = self.retry.backoff(attempt, exc)
        self.on_retry(exc, wait, request.ids)
        log_retry(exc, endpoint=request.endpoint, wait=wait, attempt=attempt, attempts=self.retry.attempts,
                  dataset=request.dataset or request.dataflow)
        return wait

    def headers(self, token: str, request: api.ApiRequest | None = None) -> dict[str, str]:
        """The headers of a Power BI call: the token, and the profile header when the client acts as a profile
        (unless ``request`` is one the service principal makes as itself)."""
        return api.request_headers(token, None if request is not None and request.as_app else self.profile_id)

    def check_profile(self, handle: Handle) -> None:
        """Refuse to follow a refresh started as another profile than this client's: its ids may mean another
        refresh, or nothing, to this profile (a retry must reattach as the profile that started it)."""
        recorded = getattr(handle, "profile_id", None)
        if (recorded or None) != (self.profile_id or None):
            msg = (f"Refresh {handle.refresh_id} of dataset {handle.dataset_name!r} was started as "
                   f"{_as(recorded)}, but this client acts as {_as(self.profile_id)}: follow it with a client of the "
                   "profile that started it.")
            raise ConfigurationError(msg, workspace=handle.workspace_name, dataset=handle.dataset_name)

    def _retry_hook(self, ids: tuple[str, str] | None) -> Callable[[BaseException, float], None]:
        return lambda exc, wait: self.on_retry(exc, wait, ids)

    def _waited(self, handle: Handle) -> float:
        requested = parse_timestamp(handle.requested_at) or utcnow()
        return (utcnow() - requested).total_seconds()

    def details_missing(self, handle: Handle, exc: PowerBIError) -> RefreshState:
        """An enhanced refresh whose details answer 404: ``NotStarted`` within the grace period, else ``exc``."""
        if self._waited(handle) <= self.appearance_grace:
            return RefreshState(status=RefreshStatus.NOT_STARTED)
        raise exc

    def standard_state(self, handle: Handle, entry: HistoryEntry | None) -> RefreshState:
        """The state of a standard refresh from its history entry; ``NotStarted`` while within the grace period."""
        if entry is not None:
            return api.state_from_entry(entry)
        waited = self._waited(handle)
        if waited <= self.appearance_grace:
            return RefreshState(status=RefreshStatus.NOT_STARTED)
        raise api.not_visible_error(handle, waited)

    def result_from(self, handle: Handle, state: RefreshState, cloud: Cloud | None = None, **extra: Any) -> RefreshResult:
        """The :class:`RefreshResult` of ``handle`` in ``state`` (with a portal link)."""
        return api.result_from(handle, state, cloud or self.cloud, **extra)
