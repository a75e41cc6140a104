"""Emulated data sources of datasets and the gateways they are bound to: what a refresh needs to reach its data.

A dataset lists its data sources (``GET …/datasets/{id}/datasources``); each is bound to a gateway data source, or
not bound at all (no ``gatewayId``). A bound one has credentials or not, and its gateway is online or offline;
``GET /gateways/{id}/datasources/{id}/status`` tells, as Power BI does:

- 200 with an empty body: the gateway reaches the source with its credentials;
- 400 ``DM_GWPipeline_Client_GatewayUnreachable`` (the swagger's example): the gateway is offline;
- 400 ``DMTS_DatasourceHasNoCredentialError``: the data source has no credentials;
- 403 ``PowerBINotAuthorizedException``: the caller is not an admin of the gateway (``admins`` of ``add_gateway``);
- 404 ``PowerBIEntityNotFound``: no such gateway, or no such data source on it.

``Default.GetBoundGatewayDatasources`` lists the bound gateway data sources (name, type, credential type).
A composite model reads other semantic models (``link_model``, scenario key ``upstream_datasets``): each is an
``AnalysisServices`` data source on ``powerbi://api.powerbi.com/v1.0/myorg/<workspace name>`` whose database is the
model's name, bound to no gateway.
A refresh is not affected by any of this in the emulator: seed the refresh outcome as usual.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pbi_taskflow.emulator.state import DatasetState, PowerBIState, check_guid, new_id
from pbi_taskflow.emulator.state import _lookup as lookup
from pbi_taskflow.emulator.wire import Request, Response, empty_response, json_response

if TYPE_CHECKING:
    from pbi_taskflow.emulator.powerbi import PowerBI

_DATASET = r"/groups/(?P<g>[^/]+)/datasets/(?P<d>[^/]+)"


def _route(suffix: str) -> re.Pattern[str]:
    return re.compile(rf"^/v1\.0/myorg{suffix}/?$", re.IGNORECASE)


GATEWAY_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    ("GET", "datasources", _route(f"{_DATASET}/datasources")),
    ("GET", "bound_gateway_datasources", _route(f"{_DATASET}/Default.GetBoundGatewayDatasources")),
    ("GET", "gateway_datasource_status", _route("/gateways/(?P<w>[^/]+)/datasources/(?P<s>[^/]+)/status")),
]
#: the endpoints about one dataset (faults may name the dataset), and every endpoint of this module
GATEWAY_DATASET_ENDPOINTS = frozenset({"datasources", "bound_gateway_datasources"})
GATEWAY_ENDPOINTS = GATEWAY_DATASET_ENDPOINTS | {"gateway_datasource_status"}

GATEWAY_UNREACHABLE = "DM_GWPipeline_Client_GatewayUnreachable"
NO_CREDENTIALS = "DMTS_DatasourceHasNoCredentialError"
CREDENTIAL_TYPES = ("Basic", "Windows", "Anonymous", "OAuth2", "Key", "SAS")
#: the data source of a composite model reading a semantic model: its type and the server's workspace-less prefix
MODEL_SOURCE_TYPE = "AnalysisServices"
MODEL_SERVER = "powerbi://api.powerbi.com/v1.0/myorg"


@dataclasses.dataclass
class GatewayState:
    """An on-premises data gateway (cluster): online or not, and which apps administer it."""

    id: str
    name: str
    online: bool = True
    #: client ids of the apps that are admins of it (may read its status); ``None``: every app
    admins: frozenset[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "online": self.online}


@dataclasses.dataclass
class DatasourceState:
    """A data source of a dataset, bound to a gateway (``gateway_id``) or not."""

    id: str
    datasource_type: str
    connection_details: dict[str, str]
    gateway_id: str | None = None
    credentials: bool = True
    credential_type: str = "Basic"
    name: str = ""
    on_premises: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "datasource_type": self.datasource_type,
                "gateway_id": self.gateway_id, "credentials": self.credentials}


def _refused(status: int, code: str, message: str | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "pbi.error": {"code": code, "parameters": {}, "details": [],
                                                          "exceptionCulprit": 1}}
    if message:
        error["message"] = message
    return json_response(status, {"error": error})


class GatewayAPI:
    """The data source and gateway routes, answered for the Power BI part (under its state's lock)."""

    def __init__(self, powerbi: PowerBI) -> None:
        self.powerbi = powerbi

    def handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {"datasources": self.datasources, "bound_gateway_datasources": self.bound,
                "gateway_datasource_status": self.status}

    def _dataset(self, request: Request, params: dict[str, str]) -> DatasetState | Response:
        found = self.powerbi._find(request, params)
        if isinstance(found, Response):
            return found
        assert found[1] is not None
        return found[1]

    def datasources(self, request: Request, params: dict[str, str]) -> Response:
        ds = self._dataset(request, params)
        if isinstance(ds, Response):
            return ds
        rows = []
        for source in ds.datasources:
            row: dict[str, Any] = {"datasourceType": source.datasource_type,
                                   "connectionDetails": dict(source.connection_details)}
            if source.gateway_id is not None:
                row.update(gatewayId=source.gateway_id, datasourceId=source.id)
            rows.append(row)
        return json_response(200, {"@odata.context": f"{self.powerbi._api_root()}/$metadata#datasources",
                                   "value": rows})

    def bound(self, request: Request, params: dict[str, str]) -> Response:
        ds = self._dataset(request, params)
        if isinstance(ds, Response):
            return ds
        rows = [{"id": s.id, "gatewayId": s.gateway_id, "datasourceType": s.datasource_type,
                 "connectionDetails": json.dumps(s.connection_details), "credentialType": s.credential_type,
                 "datasourceName": s.name} for s in ds.datasources if s.gateway_id is not None]
        return json_response(200, {"@odata.context": f"{self.powerbi._api_root()}/$metadata#gatewayDatasources",
                                   "value": rows})

    def status(self, request: Request, params: dict[str, str]) -> Response:
        state = self.powerbi.state
        gateway = state.gateways.get(params["w"].lower())
        source = None if gateway is None else next(
            (s for w in state.workspaces.values() for d in w.datasets.values() for s in d.datasources
             if s.id == params["s"].lower() and s.gateway_id == gateway.id), None)
        if gateway is None or source is None:
            return _refused(404, "PowerBIEntityNotFound")
        if gateway.admins is not None and (request.caller or "").lower() not in gateway.admins:
            return _refused(403, "PowerBINotAuthorizedException", f"The caller is not an admin of gateway {gateway.id}.")
        if not gateway.online:
            return _refused(400, GATEWAY_UNREACHABLE)
        if not source.credentials:
            return _refused(400, NO_CREDENTIALS)
        return empty_response(200)


class GatewaySeeding:
    """The :class:`~pbi_taskflow.emulator.Emulator` methods that seed gateways and data sources."""

    state: PowerBIState

    def gateway(self, ref: str) -> GatewayState:
        """An emulated gateway by id or name."""
        with self.state.lock:
            return lookup(list(self.state.gateways.values()), ref, "gateway")  # type: ignore[no-any-return]

    def add_gateway(self, name: str, *, id: str | None = None, online: bool = True,
                    admins: Iterable[str] | None = None) -> dict[str, Any]:
        """Add an on-premises data gateway; ``admins``: the only apps (client ids) that may read its status."""
        with self.state.lock:
            gateway = GatewayState(id=check_guid(id or new_id(), "gateway id"), name=name, online=bool(online),
                                   admins=None if admins is None else frozenset(check_guid(a, "admin client id")
                                                                                for a in admins))
            if gateway.id in self.state.gateways:
                msg = f"A gateway with id {gateway.id} already exists in the emulator."
                raise ValueError(msg)
            self.state.gateways[gateway.id] = gateway
            return gateway.to_dict()

    def set_gateway(self, gateway: str, *, online: bool) -> None:
        """Take a gateway (by id or name) offline, or bring it back online."""
        with self.state.lock:
            self.gateway(gateway).online = bool(online)

    def add_datasource(self, dataset: str, *, type: str = "Sql", server: str | None = None,
                       database: str | None = None, connection_details: Mapping[str, str] | None = None,
                       gateway: str | None = None, credentials: bool = True, credential_type: str = "Basic",
                       name: str | None = None, id: str | None = None, on_premises: bool = True) -> dict[str, Any]:
        """Add a data source to a dataset (by id or name); ``gateway`` (id or name) binds it, ``None`` leaves it
        unbound. ``credentials=False``: its gateway data source has none (the status read says so)."""
        if credential_type not in CREDENTIAL_TYPES:
            msg = f"Unknown credential_type {credential_type!r}; expected one of {', '.join(CREDENTIAL_TYPES)}."
            raise ValueError(msg)
        details = {k: v for k, v in {"server": server, "database": database}.items() if v is not None}
        details.update(connection_details or {})
        with self.state.lock:
            ds = self.state.dataset(dataset)
            source = DatasourceState(id=check_guid(id or new_id(), "data source id"), datasource_type=type,
                                     connection_details={str(k): str(v) for k, v in details.items()},
                                     gateway_id=self.gateway(gateway).id if gateway is not None else None,
                                     credentials=bool(credentials), credential_type=credential_type,
                                     name=name or f"{type} {'/'.join(details.values())}".strip(),
                                     on_premises=bool(on_premises))
            ds.datasources.append(source)
            return source.to_dict()

    def link_model(self, dataset: str, upstream_datasets: Iterable[str]) -> list[dict[str, Any]]:
        """Make ``dataset`` a composite model reading the ``upstream_datasets`` (ids, or names unique across
        workspaces): each becomes an ``AnalysisServices`` data source of it, ``connectionDetails`` ``{"server":
        "powerbi://api.powerbi.com/v1.0/myorg/<workspace name>", "database": "<model name>"}``, bound to no gateway
        (a cloud source), as Power BI lists a composite model's link to a semantic model. Linking twice changes
        nothing; returns the data sources added."""
        if isinstance(upstream_datasets, str):
            upstream_datasets = [upstream_datasets]
        added = []
        with self.state.lock:
            reader = self.state.dataset(dataset)
            for ref in upstream_datasets:
                details = self._model_details(reader, self.state.dataset(ref))
                if all(s.connection_details != details for s in reader.datasources):
                    added.append(self.add_datasource(reader.id, type=MODEL_SOURCE_TYPE, on_premises=False,
                                                     connection_details=details))
        return added

    def _model_details(self, reader: DatasetState, upstream: DatasetState) -> dict[str, str]:
        if upstream.id == reader.id:
            msg = f"Dataset {reader.name!r} cannot read itself."
            raise ValueError(msg)
        workspace = self.state.workspace(upstream.workspace_id)
        return {"server": f"{MODEL_SERVER}/{workspace.name}", "database": upstream.name}

    def set_datasource(self, dataset: str, datasource: str, *, credentials: bool | None = None,
                       gateway: str | None = None, unbind: bool = False) -> None:
        """Change a data source (id or name) of a dataset: give or remove its credentials, bind it to ``gateway``,
        or ``unbind`` it."""
        with self.state.lock:
            source = lookup(self.state.dataset(dataset).datasources, datasource, "data source")
            if credentials is not None:
                source.credentials = bool(credentials)
            if gateway is not None:
                source.gateway_id = self.gateway(gateway).id
            if unbind:
                source.gateway_id = None


_GATEWAY_KEYS = {"name", "id", "online", "admins"}
_DATASOURCE_KEYS = {"type", "server", "database", "connection_details", "gateway", "credentials", "credential_type",
                    "name", "id", "on_premises"}


def apply_gateways(emu: GatewaySeeding, gateways: Iterable[Any]) -> None:
    """Seed a scenario's ``gateways`` (before its datasets, whose ``datasources`` may name them)."""
    from pbi_taskflow.emulator.scenario import _check as check_keys

    for index, raw in enumerate(gateways):
        entry = dict(check_keys(raw, _GATEWAY_KEYS, f"gateways[{index}]", ("name",)))
        emu.add_gateway(entry.pop("name"), **entry)


def apply_datasources(emu: GatewaySeeding, dataset_id: str, datasources: Iterable[Any], where: str) -> None:
    """Seed the ``datasources`` of one scenario dataset (``where``: its place in the scenario, for errors)."""
    from pbi_taskflow.emulator.scenario import _check as check_keys

    for index, raw in enumerate(datasources):
        emu.add_datasource(dataset_id, **check_keys(raw, _DATASOURCE_KEYS, f"{where}.datasources[{index}]"))


def apply_models(emu: GatewaySeeding, workspaces: Iterable[Any]) -> None:
    """Seed the ``upstream_datasets`` of scenario datasets (composite models), once every dataset exists."""
    for w_index, ws in enumerate(workspaces):
        for d_index, ds in enumerate(ws.get("datasets") or ()):
            upstream = ds.get("upstream_datasets")
            if upstream is None:
                continue
            if isinstance(upstream, str) or not isinstance(upstream, Iterable):
                msg = (f"Scenario workspaces[{w_index}].datasets[{d_index}].upstream_datasets must be a list of "
                       f"dataset names or ids, got {upstream!r}.")
                raise TypeError(msg)
            datasets = list(emu.state.workspace(ws.get("id") or ws["name"]).datasets.values())
            emu.link_model(lookup(datasets, ds.get("id") or ds["name"], "dataset").id, upstream)


__all__ = ["MODEL_SERVER", "MODEL_SOURCE_TYPE", "DatasourceState", "GatewaySeeding", "GatewayState", "apply_datasources",
           "apply_gateways", "apply_models"]
