"""Data source reads of the sync client: a dataset's data sources, their gateway bindings and gateway status.

These are the reads of the pre-flight checks (:mod:`pbi_taskflow.engine.preflight`). Each is an idempotent GET, so
transient faults follow the client's :class:`~pbi_taskflow.client.retry.RetryPolicy`; refusals (401/403) and 4xx
answers raise the usual :class:`~pbi_taskflow.errors.PowerBIError` subclasses, which the checks interpret.
"""

from __future__ import annotations

import dataclasses

from pbi_taskflow.client import api
from pbi_taskflow.client.models import Datasource, Target
from pbi_taskflow.errors import NotFoundError, PermissionDeniedError


class DatasourceMethods:
    """Mixed into :class:`~pbi_taskflow.client.sync.PowerBIClient`, which provides :meth:`call`."""

    def call(self, request: api.ApiRequest) -> api.ApiResponse:
        raise NotImplementedError

    def list_datasources(self, target: Target) -> list[Datasource]:
        """The data sources of ``target``'s dataset, each with its gateway binding (``GET …/datasources``)."""
        names = {"workspace": target.workspace_name, "dataset": target.dataset_name}
        return api.parse_datasources(self.call(api.dataset_datasources(target.workspace_id, target.dataset_id,
                                                                       **names)).body)

    def bound_datasources(self, target: Target) -> list[Datasource]:
        """:meth:`list_datasources` with the name and credential type of each bound gateway data source
        (``Default.GetBoundGatewayDatasources``); when that read is refused or unknown, without them."""
        sources = self.list_datasources(target)
        if not any(s.bound for s in sources):
            return sources
        request = api.bound_gateway_datasources(target.workspace_id, target.dataset_id,
                                                workspace=target.workspace_name, dataset=target.dataset_name)
        try:
            bound = api.parse_gateway_datasources(self.call(request).body)
        except (PermissionDeniedError, NotFoundError):
            return sources
        out = []
        for source in sources:
            found = bound.get((source.datasource_id or "").lower())
            if found is not None:
                source = dataclasses.replace(source, name=found.get("datasourceName") or None,
                                             credential_type=found.get("credentialType") or None)
            out.append(source)
        return out

    def check_gateway_datasource(self, source: Datasource, *, dataset: str | None = None) -> None:
        """Whether the gateway reaches ``source`` with its stored credentials: returns on 200, else raises the
        answer as an error (400 ``DM_GWPipeline_Client_GatewayUnreachable``: the gateway is offline; 401/403: the
        caller is not an admin of the gateway)."""
        if not source.bound:
            msg = f"Data source {source.label!r} is not bound to a gateway; there is no gateway status to read."
            raise ValueError(msg)
        self.call(api.gateway_datasource_status(str(source.gateway_id), str(source.datasource_id), dataset=dataset))


__all__ = ["DatasourceMethods"]
