"""Power BI REST calls as plain data: paths, query parameters, bodies and header helpers."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pbi_taskflow.client.models import Handle, RefreshOptions

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: str) -> bool:
    """Whether ``value`` looks like a Power BI id (a GUID)."""
    return bool(GUID_RE.match(value.strip()))


@dataclasses.dataclass(frozen=True)
class ApiRequest:
    """One Power BI REST call, independent of the HTTP library that sends it.

    :param method: HTTP method.
    :param path: path below the API root (``/groups/…``).
    :param endpoint: short endpoint name used in logs and by the emulator (``history``, ``refresh_post``…).
    :param operation: what the call does, for error messages (``trigger refresh``).
    :param params: query parameters.
    :param json: JSON body.
    :param idempotent: whether a transient failure may be retried by simply re-sending.
    :param workspace: workspace concerned, for error messages.
    :param dataset: dataset concerned, for error messages.
    :param ids: ``(workspace id, dataset id)`` of the dataset the call is about, if any (throttle accounting);
        ``(workspace id, dataflow id)`` for a dataflow.
    :param dataflow: dataflow concerned, for error messages.
    :param as_app: sent as the service principal itself even by a client acting as a profile (the profiles API).
    """

    method: str
    path: str
    endpoint: str
    operation: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    idempotent: bool = True
    workspace: str | None = None
    dataset: str | None = None
    ids: tuple[str, str] | None = None
    dataflow: str | None = None
    as_app: bool = False


@dataclasses.dataclass(frozen=True)
class ApiResponse:
    """A Power BI answer: status, headers (case-insensitive lookup via :func:`header`) and decoded body."""

    status: int
    headers: Mapping[str, str]
    body: Any


def _seg(value: str) -> str:
    return quote(value.strip(), safe="")


def odata_quote(value: str) -> str:
    """Quote a string literal for an OData ``$filter`` (``'`` doubled)."""
    return "'" + value.replace("'", "''") + "'"


def list_groups(name: str | None = None, top: int | None = None) -> ApiRequest:
    """``GET /groups`` with an exact ``name eq`` filter and/or ``$top``."""
    params: dict[str, str] = {}
    if name is not None:
        params["$filter"] = f"name eq {odata_quote(name)}"
    if top is not None:
        params["$top"] = str(int(top))
    return ApiRequest("GET", "/groups", "groups", "list workspaces", params=params or None, workspace=name)


def list_datasets(workspace_id: str, *, workspace: str | None = None) -> ApiRequest:
    """``GET /groups/{id}/datasets``."""
    return ApiRequest(
        "GET", f"/groups/{_seg(workspace_id)}/datasets", "datasets", "list datasets", workspace=workspace or workspace_id
    )


def get_dataset(workspace_id: str, dataset_id: str, *, workspace: str | None = None) -> ApiRequest:
    """``GET /groups/{id}/datasets/{id}``."""
    return ApiRequest(
        "GET",
        f"/groups/{_seg(workspace_id)}/datasets/{_seg(dataset_id)}",
        "dataset",
        "get dataset",
        workspace=workspace or workspace_id,
        dataset=dataset_id,
    )


def _refreshes(workspace_id: str, dataset_id: str) -> str:
    return f"/groups/{_seg(workspace_id)}/datasets/{_seg(dataset_id)}/refreshes"


def trigger_refresh(
    workspace_id: str,
    dataset_id: str,
    options: RefreshOptions,
    *,
    workspace: str | None = None,
    dataset: str | None = None,
) -> ApiRequest:
    """``POST …/refreshes`` with the standard or enhanced body. Never blindly retried."""
    return ApiRequest(
        "POST",
        _refreshes(workspace_id, dataset_id),
        "refresh_post",
        "trigger refresh",
        json=options.to_body(),
        idempotent=False,
        workspace=workspace or workspace_id,
        dataset=dataset or dataset_id,
        ids=(workspace_id, dataset_id),
    )


def refresh_history(
    workspace_id: str, dataset_id: str, top: int | None = None, *, workspace: str | None = None, dataset: str | None = None
) -> ApiRequest:
    """``GET …/refreshes?$top=N``."""
    return ApiRequest(
        "GET",
        _refreshes(workspace_id, dataset_id),
        "history",
        "read refresh history",
        params={"$top": str(int(top))} if top else None,
        workspace=workspace or workspace_id,
        dataset=dataset or dataset_id,
        ids=(workspace_id, dataset_id),
    )


def refresh_details(handle: Handle) -> ApiRequest:
    """``GET …/refreshes/{id}`` (enhanced refreshes only)."""
    return ApiRequest(
        "GET",
        f"{_refreshes(handle.workspace_id, handle.dataset_id)}/{_seg(handle.refresh_id)}",
        "details",
        "read refresh details",
        workspace=handle.workspace_name,
        dataset=handle.dataset_name,
        ids=(handle.workspace_id, handle.dataset_id),
    )


def cancel_refresh(handle: Handle) -> ApiRequest:
    """``DELETE …/refreshes/{id}`` (enhanced refreshes only). Repeating it is harmless."""
    return ApiRequest(
        "DELETE",
        f"{_refreshes(handle.workspace_id, handle.dataset_id)}/{_seg(handle.refresh_id)}",
        "cancel",
        "cancel refresh",
        workspace=handle.workspace_name,
        dataset=handle.dataset_name,
        ids=(handle.workspace_id, handle.dataset_id),
    )


def _dataflows(workspace_id: str) -> str:
    return f"/groups/{_seg(workspace_id)}/dataflows"


def list_dataflows(workspace_id: str, *, workspace: str | None = None) -> ApiRequest:
    """``GET /groups/{id}/dataflows``."""
    return ApiRequest("GET", _dataflows(workspace_id), "dataflows", "list dataflows", workspace=workspace or workspace_id)


def _dataflow_call(method: str, workspace_id: str, dataflow_id: str, suffix: str, endpoint: str, operation: str,
                   workspace: str | None, dataflow: str | None, **fields: Any) -> ApiRequest:
    return ApiRequest(method, f"{_dataflows(workspace_id)}/{_seg(dataflow_id)}{suffix}", endpoint, operation,
                      workspace=workspace or workspace_id, dataflow=dataflow or dataflow_id,
                      ids=(workspace_id, dataflow_id), **fields)


def trigger_dataflow_refresh(workspace_id: str, dataflow_id: str, notify_option: str = "NoNotification", *,
                             workspace: str | None = None, dataflow: str | None = None) -> ApiRequest:
    """``POST …/dataflows/{id}/refreshes``; Power BI answers 200 without a body or an id. Never blindly retried."""
    return _dataflow_call("POST", workspace_id, dataflow_id, "/refreshes", "dataflow_refresh",
                          "trigger dataflow refresh", workspace, dataflow, json={"notifyOption": notify_option},
                          idempotent=False)


def dataflow_transactions(workspace_id: str, dataflow_id: str, *, workspace: str | None = None,
                          dataflow: str | None = None) -> ApiRequest:
    """``GET …/dataflows/{id}/transactions``: the dataflow's refreshes, newest first."""
    return _dataflow_call("GET", workspace_id, dataflow_id, "/transactions", "dataflow_transactions",
                          "read dataflow transactions", workspace, dataflow)


def dataflow_upstream_dataflows(workspace_id: str, dataflow_id: str, *, workspace: str | None = None,
                                dataflow: str | None = None) -> ApiRequest:
    """``GET …/dataflows/{id}/upstreamDataflows``: the dataflows it reads."""
    return _dataflow_call("GET", workspace_id, dataflow_id, "/upstreamDataflows", "dataflow_upstream_dataflows",
                          "read upstream dataflows", workspace, dataflow)


def cancel_dataflow_transaction(workspace_id: str, transaction_id: str, *, workspace: str | None = None,
                                dataflow: str | None = None) -> ApiRequest:
    """``POST …/dataflows/transactions/{id}/cancel``. Repeating it is harmless (it answers ``alreadyConcluded``)."""
    return ApiRequest("POST", f"{_dataflows(workspace_id)}/transactions/{_seg(transaction_id)}/cancel",
                      "dataflow_cancel", "cancel dataflow transaction", workspace=workspace or workspace_id,
                      dataflow=dataflow)


def dataset_upstream_dataflows(workspace_id: str, *, workspace: str | None = None) -> ApiRequest:
    """``GET /groups/{id}/datasets/upstreamDataflows``: each dataset of the workspace with the dataflows it reads."""
    return ApiRequest("GET", f"/groups/{_seg(workspace_id)}/datasets/upstreamDataflows", "dataset_upstream_dataflows",
                      "read the dataflows of datasets", workspace=workspace or workspace_id)


def _dataset_call(workspace_id: str, dataset_id: str, suffix: str, endpoint: str, operation: str,
                  workspace: str | None, dataset: str | None) -> ApiRequest:
    return ApiRequest("GET", f"/groups/{_seg(workspace_id)}/datasets/{_seg(dataset_id)}{suffix}", endpoint, operation,
                      workspace=workspace or workspace_id, dataset=dataset or dataset_id, ids=(workspace_id, dataset_id))


def dataset_datasources(workspace_id: str, dataset_id: str, *, workspace: str | None = None,
                        dataset: str | None = None) -> ApiRequest:
    """``GET …/datasets/{id}/datasources``: the dataset's data sources and the gateway each is bound to."""
    return _dataset_call(workspace_id, dataset_id, "/datasources", "datasources", "read data sources", workspace,
                         dataset)


def bound_gateway_datasources(workspace_id: str, dataset_id: str, *, workspace: str | None = None,
                              dataset: str | None = None) -> ApiRequest:
    """``GET …/datasets/{id}/Default.GetBoundGatewayDatasources``: the gateway data sources the dataset is bound to."""
    return _dataset_call(workspace_id, dataset_id, "/Default.GetBoundGatewayDatasources", "bound_gateway_datasources",
                         "read bound gateway data sources", workspace, dataset)


def gateway_datasource_status(gateway_id: str, datasource_id: str, *, dataset: str | None = None) -> ApiRequest:
    """``GET /gateways/{id}/datasources/{id}/status``: 200 when the gateway reaches the source with its credentials."""
    return ApiRequest("GET", f"/gateways/{_seg(gateway_id)}/datasources/{_seg(datasource_id)}/status",
                      "gateway_datasource_status", "check gateway data source", dataset=dataset)


def get_profile(profile_id: str) -> ApiRequest:
    """``GET /profiles/{id}``: a service principal profile of the caller (sent without the profile header)."""
    return ApiRequest("GET", f"/profiles/{_seg(profile_id)}", "profile", "read service principal profile",
                      as_app=True)


#: The header that makes a call act as a service principal profile (multi-tenant apps); never sent to Entra ID.
PROFILE_HEADER = "X-PowerBI-Profile-Id"


def request_headers(token: str, profile_id: str | None = None) -> dict[str, str]:
    """The headers of every Power BI call: the bearer token, JSON, and the profile header when acting as one."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if profile_id:
        headers[PROFILE_HEADER] = profile_id
    return headers


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts too."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def request_id(headers: Mapping[str, str]) -> str | None:
    """The Power BI request id of an answer (``RequestId``, else ``x-ms-request-id``)."""
    return header(headers, "RequestId") or header(headers, "x-ms-request-id")


def decode_body(raw: bytes | str | None) -> Any:
    """Decode a JSON body; a non-JSON body comes back as text, an empty one as ``None``."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
