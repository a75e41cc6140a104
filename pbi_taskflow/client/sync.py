"""The synchronous Power BI client (``requests``): names to ids, trigger, status, history, cancel.

Every call has connect/read timeouts, goes through the shared :class:`~pbi_taskflow.client.retry.RetryPolicy`
(idempotent calls only) and renews the access token once when Power BI rejects it. The refresh POST
is never blindly re-sent: after an ambiguous failure the history is checked for the refresh it may
have started first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pbi_taskflow.client import api
from pbi_taskflow.client.auth import AccessToken, Credential
from pbi_taskflow.client.base import STATUS_TOP, ClientBase, Timeout, utcnow
from pbi_taskflow.client.clouds import Cloud
from pbi_taskflow.client.dataflows import DataflowMethods
from pbi_taskflow.client.models import (
    Handle,
    HistoryEntry,
    RefreshState,
    Target,
)
from pbi_taskflow.client.resolve import NameResolver
from pbi_taskflow.client.retry import RetryPolicy, is_transient
from pbi_taskflow.client.sources import DatasourceMethods
from pbi_taskflow.errors import (
    EnhancedRefreshNotSupportedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PowerBIError,
    PowerBIHTTPError,
    TokenExpiredError,
)

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("pbi_taskflow.client.sync")



class PowerBIClient(DatasourceMethods, DataflowMethods, NameResolver, ClientBase):
    """A Power BI REST client for one service principal.

    :param credential: where access tokens come from (see :mod:`pbi_taskflow.client.auth`).
    :param cloud: API root, scope and portal (default: the credential's cloud, else public).
    :param api_root: overrides the cloud's API root (``https://…/v1.0/myorg``).
    :param timeout: (connect, read) timeout in seconds for every call.
    :param retry: the retry policy for transient faults (default :class:`RetryPolicy`).
    :param ca_bundle: PEM file of CAs to trust (per request, so ``REQUESTS_CA_BUNDLE`` cannot override it).
    :param session: a ``requests.Session`` to use (not closed by the client).
    :param allowed_workspaces: names or ids of the only workspaces this client may touch.
    :param conn_id: the Airflow connection id, for messages.
    :param profile_id: a service principal profile to act as (``X-PowerBI-Profile-Id`` on every Power BI call).
    """

    def __init__(
        self,
        *,
        credential: Credential,
        cloud: Cloud | None = None,
        api_root: str | None = None,
        timeout: Timeout = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        ca_bundle: str | None = None,
        session: Any = None,
        allowed_workspaces: Iterable[str] | str | None = None,
        conn_id: str | None = None,
        profile_id: str | None = None,
    ) -> None:
        super().__init__(credential=credential, cloud=cloud, api_root=api_root, timeout=timeout, retry=retry,
                         ca_bundle=ca_bundle, conn_id=conn_id, profile_id=profile_id)
        self._init_resolver(allowed_workspaces)
        self._session = session
        self._owns_session = session is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._session is not None and self._owns_session:
            self._session.close()
            self._session = None

    # --- transport ---------------------------------------------------------------------------

    @property
    def session(self) -> Any:
        """The ``requests.Session`` (created on first use)."""
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._owns_session = True
        return self._session

    def _exchange(self, request: api.ApiRequest, token: AccessToken) -> api.ApiResponse:
        import requests

        kwargs: dict[str, Any] = {
            "params": request.params,
            "headers": self.headers(token.token, request),
            "timeout": self.timeout,
        }
        if request.json is not None:
            kwargs["json"] = request.json
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        url = self.api_root + request.path
        try:
            resp = self.session.request(request.method, url, **kwargs)
        except requests.Timeout as exc:
            raise api.transport_error(request, "timed out", exc, unsent=api.never_connected(exc)) from None
        except requests.RequestException as exc:  # dropped, reset, refused, TLS, truncated body
            raise api.transport_error(request, "connection failed", exc, unsent=api.never_connected(exc)) from None
        response = api.ApiResponse(resp.status_code, resp.headers, api.decode_body(resp.content))
        log.debug(
            "Power BI %s %s -> %s (request id %s)", request.method, request.path, resp.status_code, api.request_id(resp.headers)
        )
        return api.check(response, request)

    def _once(self, request: api.ApiRequest) -> api.ApiResponse:
        """One logical call: renews the token once if Power BI rejects it."""
        token = self.credential.get_token()
        try:
            return self._exchange(request, token)
        except PermissionDeniedError as exc:
            if not (isinstance(exc, TokenExpiredError) or exc.status == 401):
                raise
            log.info("Power BI rejected the access token (%s); renewing it and retrying once.", exc.code or exc.status)
            self.credential.invalidate(token.token)
            return self._exchange(request, self.credential.get_token())

    def call(self, request: api.ApiRequest) -> api.ApiResponse:
        """Send ``request``: idempotent calls are retried on transient faults."""
        if not request.idempotent:
            return self._once(request)
        return self.retry.call(
            lambda: self._once(request), endpoint=request.endpoint, dataset=request.dataset, on_retry=self._retry_hook(request.ids)
        )

    # --- refreshes -------------------------------------------------------------------------------

    def trigger_refresh(self, target: Target) -> Handle:
        """Start a refresh and return its :class:`Handle`.

        The request is sent again only when it certainly did not arrive (throttled, or the connection
        could not be opened). When it may have arrived but the answer was lost (a dropped connection, a
        timeout, a 5xx), :class:`~pbi_taskflow.errors.AmbiguousRefreshRequestError` is raised: the caller
        looks for the refresh in the history instead of risking a second one.

        :raises EnhancedRefreshNotSupportedError: enhanced options on a shared-capacity workspace.
        :raises RefreshAlreadyRunningError: another refresh of the dataset is running.
        :raises AmbiguousRefreshRequestError: the request may or may not have started a refresh.
        """
        options = target.options
        enhanced = options.is_enhanced
        if enhanced and target.on_dedicated_capacity is False:
            msg = (
                f"Cannot start an enhanced refresh of dataset {target.dataset_name!r}: workspace "
                f"{target.workspace_name!r} is not on a Premium, PPU, Embedded or Fabric capacity, and enhanced options "
                "(tables, partitions, type, commit mode…) need one. Drop the options or move the workspace."
            )
            raise EnhancedRefreshNotSupportedError(msg, workspace=target.workspace_name, dataset=target.dataset_name)
        request = api.trigger_refresh(
            target.workspace_id, target.dataset_id, options, workspace=target.workspace_name, dataset=target.dataset_name
        )
        response, requested_at = self.send_start(
            request, lambda exc, requested_at: api.ambiguous_request(target, exc, requested_at))
        return self._started(target, response, enhanced, requested_at)

    def send_start(self, request: api.ApiRequest, ambiguous: Callable[[PowerBIError, dt.datetime], PowerBIError]
                   ) -> tuple[api.ApiResponse, dt.datetime]:
        """Send a request that starts a refresh, and when it was sent: sent again only when it certainly did not
        arrive; ``ambiguous`` builds the error for one that may have arrived (see ``ClientBase.start_retry_wait``)."""
        attempt = 1
        while True:
            requested_at = utcnow()
            try:
                return self.call(request), requested_at
            except PowerBIError as exc:
                self.retry.wait(self.start_retry_wait(exc, attempt, request, requested_at, ambiguous))
                attempt += 1

    def _started(self, target: Target, response: api.ApiResponse, enhanced: bool, requested_at: dt.datetime) -> Handle:
        refresh_id = api.refresh_id_from_trigger(response.headers, enhanced=enhanced)
        if not refresh_id:
            msg = (
                f"Power BI accepted the refresh of dataset {target.dataset_name!r} but returned no refresh id "
                "(no Location, x-ms-request-id or RequestId header)."
            )
            raise PowerBIHTTPError(msg, status=response.status, workspace=target.workspace_name, dataset=target.dataset_name)
        log.info(
            "Started %s refresh %s of dataset %r in workspace %r.",
            "an enhanced" if enhanced else "a standard", refresh_id, target.dataset_name, target.workspace_name,
        )
        return self._handle(target, refresh_id, enhanced, requested_at)

    @staticmethod
    def _handle(target: Target, refresh_id: str, enhanced: bool, requested_at: dt.datetime, attached: bool = False) -> Handle:
        return Handle(
            workspace_id=target.workspace_id,
            workspace_name=target.workspace_name,
            dataset_id=target.dataset_id,
            dataset_name=target.dataset_name,
            refresh_id=refresh_id,
            kind="enhanced" if enhanced else "standard",
            requested_at=requested_at.isoformat(),
            attached=attached,
            profile_id=target.profile_id,
        )

    def confirm_options(self, handle: Handle, target: Target) -> bool | None:
        """Whether an enhanced refresh has the options ``target`` asks for; None when its details cannot be read."""
        self.check_profile(handle)
        try:
            body = self.call(api.refresh_details(handle)).body
        except PowerBIError as exc:
            if is_transient(exc) or exc.status in (401, 403, 404):
                return None
            raise
        return api.details_match(target.options, body)

    def get_refresh_state(self, handle: Handle) -> RefreshState:
        """The current state of a started refresh.

        Enhanced: the execution-details endpoint (202 running, 200 done). Standard: the history
        (small ``$top``), matched on ``requestId``; a refresh not visible yet is ``NotStarted`` for
        up to :attr:`appearance_grace` seconds.
        """
        self.check_profile(handle)
        if handle.kind == "dataflow":
            return self.dataflow_refresh_state(handle)
        if handle.kind == "enhanced":
            try:
                return api.parse_details(self.call(api.refresh_details(handle)).body)
            except NotFoundError as exc:
                return self.details_missing(handle, exc)
        ids = (handle.workspace_id, handle.dataset_id)
        entries = self._history(*ids, STATUS_TOP, handle.workspace_name, handle.dataset_name)
        entry = api.find_entry(entries, handle.refresh_id)
        if entry is None and len(entries) >= STATUS_TOP:
            entries = self._history(*ids, 60, handle.workspace_name, handle.dataset_name)
            entry = api.find_entry(entries, handle.refresh_id)
        return self.standard_state(handle, entry)

    def _history(
        self,
        workspace_id: str,
        dataset_id: str,
        top: int,
        workspace: str | None = None,
        dataset: str | None = None,
    ) -> list[HistoryEntry]:
        request = api.refresh_history(workspace_id, dataset_id, top, workspace=workspace, dataset=dataset)
        return api.parse_history(self.call(request).body)

    def refresh_history(
        self, workspace_id: str, dataset_id: str, top: int = 60, *, _names: tuple[str, str] | None = None,
        item: str = "dataset",
    ) -> list[HistoryEntry]:
        """The dataset's refresh history, newest first (``_names``: workspace and dataset names for messages).

        :param item: ``dataflow``: ``dataset_id`` is a dataflow's, and its transactions are the history.
        """
        if item == "dataflow":
            names = _names or ("", "")
            return self.dataflow_history(Target(workspace_id, names[0], dataset_id, names[1]))
        return self._history(workspace_id, dataset_id, top, *(_names or (None, None)))

    def running_refresh(self, workspace_id: str, dataset_id: str, item: str = "dataset") -> HistoryEntry | None:
        """The refresh of the dataset (or dataflow) that is running now (any origin), if any."""
        for entry in self.refresh_history(workspace_id, dataset_id, top=5, item=item):
            if not entry.status.is_terminal and not entry.end:
                return entry
        return None

    def cancel_refresh(self, handle: Handle) -> None:
        """Cancel a running enhanced refresh (Power BI cannot cancel standard ones by API).

        :raises InvalidRequestError: for a standard refresh.
        """
        self.check_profile(handle)
        if handle.kind == "dataflow":
            self.cancel_dataflow(handle)
            return
        if handle.kind != "enhanced":
            msg = (
                f"Cannot cancel refresh {handle.refresh_id} of dataset {handle.dataset_name!r}: Power BI cancels only "
                "enhanced refreshes through the API. Cancel it in the Power BI portal, or use enhanced refreshes "
                "(for example type='Full') when cancelling matters."
            )
            raise InvalidRequestError(msg, workspace=handle.workspace_name, dataset=handle.dataset_name)
        self.call(api.cancel_refresh(handle))
        log.warning("Cancelled refresh %s of dataset %r.", handle.refresh_id, handle.dataset_name)


__all__ = ["PowerBIClient"]
