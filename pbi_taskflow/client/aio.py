"""The asynchronous Power BI client (``httpx``), for triggers watching many refreshes in one loop.

It shares request building and parsing (:mod:`pbi_taskflow.client.api`), the retry policy and the
credentials with :class:`~pbi_taskflow.client.sync.PowerBIClient`. Nothing here blocks the event loop:
tokens are fetched in a worker thread (MSAL), large answers are decoded in one, and the HTTP client
is leased from the process-wide pool (:mod:`pbi_taskflow.client.pool`), which builds TLS contexts in a
thread and shares one client and its connections among every client of the same settings in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pbi_taskflow.client import api, offloop
from pbi_taskflow.client.auth import AccessToken, Credential
from pbi_taskflow.client.base import STATUS_TOP, ClientBase, Timeout
from pbi_taskflow.client.clouds import Cloud
from pbi_taskflow.client.dataflows import AsyncDataflowMethods
from pbi_taskflow.client.models import (
    Dataset,
    Handle,
    HistoryEntry,
    RefreshState,
    Target,
    Workspace,
)
from pbi_taskflow.client.names import pick
from pbi_taskflow.client.pool import Lease, PoolKey, shared_pool
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.errors import (
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    TokenExpiredError,
)

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("pbi_taskflow.client.sync")

#: Answers larger than this (bytes) are decoded in a worker thread, not on the event loop.
LARGE_BODY = 256 * 1024


class AsyncPowerBIClient(AsyncDataflowMethods, ClientBase):
    """An async Power BI REST client for one service principal.

    :param credential: where access tokens come from (see :mod:`pbi_taskflow.client.auth`).
    :param cloud: API root, scope and portal (default: the credential's cloud, else public).
    :param api_root: overrides the cloud's API root.
    :param timeout: (connect, read) timeout in seconds for every call.
    :param retry: the retry policy for transient faults (waits with ``asyncio.sleep``).
    :param ca_bundle: PEM file of CAs to trust.
    :param client: an ``httpx.AsyncClient`` to use (not closed by this client); by default one is leased
        from the process-wide pool, shared with the other clients of the same settings in the running loop.
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
        client: Any = None,
        conn_id: str | None = None,
        profile_id: str | None = None,
    ) -> None:
        super().__init__(credential=credential, cloud=cloud, api_root=api_root, timeout=timeout, retry=retry,
                         ca_bundle=ca_bundle, conn_id=conn_id, profile_id=profile_id)
        self._client = client
        self._lease: Lease | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release this client's share of the pooled HTTP client (an explicit ``client`` is left open)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.release()

    async def _http(self) -> Any:
        if self._client is not None:
            return self._client
        lease = self._lease
        if lease is None or lease.loop is not asyncio.get_running_loop():
            if lease is not None:
                lease.abandon()  # leased in a loop that has ended: its client cannot serve this one
            lease = self._lease = shared_pool().lease(PoolKey.of(self.api_root, self.ca_bundle, self.timeout))
        return await lease.client()

    async def _token(self) -> AccessToken:
        return await offloop.run(self.credential.get_token)

    async def _exchange(self, request: api.ApiRequest, token: AccessToken) -> api.ApiResponse:
        http = await self._http()  # first: it imports httpx in a worker thread
        import httpx

        headers = self.headers(token.token, request)
        try:
            resp = await http.request(
                request.method, self.api_root + request.path, params=request.params, json=request.json, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise api.transport_error(request, "timed out", exc) from None
        except httpx.RequestError as exc:  # dropped, reset, refused, TLS, truncated body
            raise api.transport_error(request, "connection failed", exc) from None
        content = resp.content
        body = await offloop.run(api.decode_body, content) if len(content) > LARGE_BODY else api.decode_body(content)
        response = api.ApiResponse(resp.status_code, resp.headers, body)
        log.debug("Power BI %s %s -> %s (request id %s)", request.method, request.path, resp.status_code,
                  api.request_id(resp.headers))
        return api.check(response, request)

    async def _once(self, request: api.ApiRequest) -> api.ApiResponse:
        token = await self._token()
        try:
            return await self._exchange(request, token)
        except PermissionDeniedError as exc:
            if not (isinstance(exc, TokenExpiredError) or exc.status == 401):
                raise
            log.info("Power BI rejected the access token (%s); renewing it and retrying once.", exc.code or exc.status)
            await offloop.run(self.credential.invalidate, token.token)
            return await self._exchange(request, await self._token())

    async def call(self, request: api.ApiRequest) -> api.ApiResponse:
        """Send ``request``; idempotent calls are retried on transient faults."""
        if not request.idempotent:
            return await self._once(request)
        return await self.retry.acall(
            lambda: self._once(request), endpoint=request.endpoint, dataset=request.dataset, on_retry=self._retry_hook(request.ids)
        )

    # --- refreshes -------------------------------------------------------------------------------

    async def refresh_history(self, workspace_id: str, dataset_id: str, top: int = 60, *, item: str = "dataset"
                              ) -> list[HistoryEntry]:
        """The dataset's refresh history, newest first (``item="dataflow"``: a dataflow's transactions)."""
        if item == "dataflow":
            return await self.dataflow_history(Target(workspace_id, "", dataset_id, ""))
        return api.parse_history((await self.call(api.refresh_history(workspace_id, dataset_id, top))).body)

    async def running_refresh(self, workspace_id: str, dataset_id: str, item: str = "dataset") -> HistoryEntry | None:
        """The refresh of the dataset (or dataflow) that is running now, if any."""
        for entry in await self.refresh_history(workspace_id, dataset_id, top=5, item=item):
            if not entry.status.is_terminal and not entry.end:
                return entry
        return None

    async def get_refresh_state(self, handle: Handle) -> RefreshState:
        """The current state of a started refresh (same rules as the sync client)."""
        self.check_profile(handle)
        if handle.kind == "dataflow":
            return await self.dataflow_refresh_state(handle)
        if handle.kind == "enhanced":
            try:
                return api.parse_details((await self.call(api.refresh_details(handle))).body)
            except NotFoundError as exc:
                return self.details_missing(handle, exc)
        request = api.refresh_history(handle.workspace_id, handle.dataset_id, STATUS_TOP,
                                      workspace=handle.workspace_name, dataset=handle.dataset_name)
        entries = api.parse_history((await self.call(request)).body)
        entry = api.find_entry(entries, handle.refresh_id)
        if entry is None and len(entries) >= STATUS_TOP:
            request = api.refresh_history(handle.workspace_id, handle.dataset_id, 60,
                                          workspace=handle.workspace_name, dataset=handle.dataset_name)
            entry = api.find_entry(api.parse_history((await self.call(request)).body),
                                   handle.refresh_id)
        return self.standard_state(handle, entry)

    async def cancel_refresh(self, handle: Handle) -> None:
        """Cancel a running enhanced refresh or dataflow transaction (standard ones cannot be cancelled by API)."""
        self.check_profile(handle)
        if handle.kind == "dataflow":
            await self.cancel_dataflow(handle)
            return
        if handle.kind != "enhanced":
            msg = (
                f"Cannot cancel refresh {handle.refresh_id} of dataset {handle.dataset_name!r}: Power BI cancels only "
                "enhanced refreshes through the API."
            )
            raise InvalidRequestError(msg, workspace=handle.workspace_name, dataset=handle.dataset_name)
        await self.call(api.cancel_refresh(handle))
        log.warning("Cancelled refresh %s of dataset %r.", handle.refresh_id, handle.dataset_name)

    # --- names -------------------------------------------------------------------------------------

    async def get_workspace(self, name_or_id: str) -> Workspace:
        """The workspace with this id or (case-insensitive, exact) name."""
        key = name_or_id.strip()
        if not api.is_guid(key):
            hits = api.parse_workspaces((await self.call(api.list_groups(name=key))).body)
            hits = [w for w in hits if w.name.strip().casefold() == key.casefold()]
            if hits:
                return pick(hits, key, kind="workspace")
        return pick(api.parse_workspaces((await self.call(api.list_groups())).body), key, kind="workspace")

    async def get_dataset(self, workspace: Workspace | str, name_or_id: str) -> Dataset:
        """The dataset with this id or (case-insensitive, exact) name in ``workspace``."""
        ws = workspace if isinstance(workspace, Workspace) else await self.get_workspace(workspace)
        body = (await self.call(api.list_datasets(ws.id, workspace=ws.name))).body
        return pick(api.parse_datasets(body, ws.id), name_or_id.strip(), kind="dataset", container=ws.name)



