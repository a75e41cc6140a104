"""Seeding the emulator from a mapping or a YAML/JSON file.

Shape (every key optional)::

    time_scale: 1.0
    token_lifetime: 3599
    profiles:                               # service principal profiles (of the default app unless client_id)
      - {display_name: Contoso, id: 3f2a..., client_id: null}
    gateways:
      - {name: Head office, id: 9d1e..., online: true, admins: null}   # admins: client ids that may read its status
    apps:
      - client_id: 11111111-2222-3333-4444-555555555555
        secret: s3cret                      # or certificate_pem / certificate_path, federated
        secret_expired: false
        federated: [{issuer: https://idp.example, subject: system:serviceaccount:ns:sa}]
    workspaces:
      - name: Sales Analytics
        id: 6c3e...                         # optional GUID
        dedicated: true                     # false: shared capacity (8 refreshes/day, no enhanced refresh)
        members: [11111111-2222-3333-4444-555555555555]   # optional: only these apps may use it
        profile: Contoso                    # optional: it belongs to this profile (its id or display name)
        datasets:
          - name: Sales
            duration: 5                     # emulated seconds
            outcome: Completed              # Failed, Cancelled, TimedOut, Disabled
            error_code: null
            error_message: null
            refreshable: true
            history_lag: 0                  # emulated seconds before a new refresh shows in the history
            details_lag: 0                  # emulated seconds its execution details answer 404
            tables: [Orders, Customers]     # or {Orders: [Orders-2024, Orders-2025], Customers: []}
            history:
              - {status: Completed, ago: 3600, duration: 60, refresh_type: Scheduled}
            upstream_dataflows: [Sales ETL]  # dataflows it reads (names unique across workspaces, or ids)
            upstream_datasets: [Sales Core] # composite model: the datasets it reads (names unique across workspaces, or ids)
            datasources:                    # bound to a gateway (name or id) or not (no gateway)
              - {type: Sql, server: sql01, database: sales, gateway: Head office, credentials: true}
        dataflows:
          - name: Sales ETL
            id: 0b1c...                     # optional GUID
            description: ""
            duration: 5                     # emulated seconds per refresh
            outcome: Success                # Failed, Cancelled
            upstream: [Raw Ingest]          # dataflows it reads, in any workspace
            transactions:
              - {status: Success, ago: 3600, duration: 60, refresh_type: Scheduled}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbi_taskflow.emulator.dataflows import apply_dataflows
from pbi_taskflow.emulator.gateways import apply_datasources, apply_gateways, apply_models
from pbi_taskflow.emulator.profiles import apply_profiles

if TYPE_CHECKING:
    from pbi_taskflow.emulator.server import Emulator

DEFAULT_SCENARIO: dict[str, Any] = {
    "workspaces": [
        {
            "name": "Sales Analytics",
            "datasets": [
                {"name": "Sales", "duration": 5},
                {"name": "Finance", "duration": 3,
                 "history": [{"status": "Completed", "ago": 86400, "duration": 240}]},
                {"name": "Inventory Model", "duration": 8},
            ],
        }
    ]
}

_TOP = {"time_scale", "token_lifetime", "apps", "workspaces", "profiles", "gateways"}
_APP = {"client_id", "secret", "secret_expired", "certificate_pem", "certificate_path", "federated", "tenant_id"}
_WORKSPACE = {"name", "id", "dedicated", "members", "datasets", "dataflows", "profile"}
_DATASET = {"name", "id", "refreshable", "duration", "outcome", "error_code", "error_message", "history",
            "history_lag", "details_lag", "tables", "upstream_dataflows", "upstream_datasets", "datasources"}
_HISTORY = {"status", "duration", "refresh_type", "ago", "error_code", "error_message"}


def _check(item: Any, allowed: set[str], where: str, required: tuple[str, ...] = ()) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        msg = f"Scenario {where} must be a mapping, got {type(item).__name__}."
        raise TypeError(msg)
    unknown = sorted(set(item) - allowed)
    if unknown:
        msg = f"Unknown key(s) {unknown} in scenario {where}; allowed: {sorted(allowed)}."
        raise ValueError(msg)
    missing = [k for k in required if k not in item]
    if missing:
        msg = f"Scenario {where} needs {missing}."
        raise ValueError(msg)
    return item


def load_scenario(source: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any]:
    """Read a scenario mapping from a YAML or JSON file (a mapping is returned as is)."""
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    if not path.is_file():
        msg = f"Scenario file {str(path)!r} does not exist; pass a YAML or JSON file path or a mapping."
        raise ValueError(msg)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    return _check(data or {}, _TOP, f"file {path.name}")


def apply_scenario(emu: Emulator, source: Mapping[str, Any] | str | os.PathLike[str]) -> None:
    """Add the scenario's apps, workspaces, datasets and history to ``emu``."""
    scenario = _check(load_scenario(source), _TOP, "top level")
    if "time_scale" in scenario:
        emu.time_scale = float(scenario["time_scale"])
    if "token_lifetime" in scenario:
        emu.token_lifetime = float(scenario["token_lifetime"])
    for index, raw in enumerate(scenario.get("apps") or ()):
        app = dict(_check(raw, _APP, f"apps[{index}]", ("client_id",)))
        if "certificate_path" in app:
            app["certificate_pem"] = Path(app.pop("certificate_path")).read_text(encoding="ascii")
        emu.add_app(app.pop("client_id"), **app)
    apply_profiles(emu, scenario.get("profiles") or ())
    apply_gateways(emu, scenario.get("gateways") or ())
    for w_index, raw_ws in enumerate(scenario.get("workspaces") or ()):
        ws = _check(raw_ws, _WORKSPACE, f"workspaces[{w_index}]", ("name",))
        created = emu.add_workspace(ws["name"], id=ws.get("id"), dedicated=bool(ws.get("dedicated", True)),
                                    members=ws.get("members"), profile=ws.get("profile"))
        for d_index, raw_ds in enumerate(ws.get("datasets") or ()):
            where = f"workspaces[{w_index}].datasets[{d_index}]"
            ds = dict(_check(raw_ds, _DATASET, where, ("name",)))
            history = ds.pop("history", None) or ()
            ds.pop("upstream_dataflows", None)  # linked once every dataflow exists
            ds.pop("upstream_datasets", None)  # linked once every dataset exists
            sources = ds.pop("datasources", None) or ()
            dataset = emu.add_dataset(created["id"], ds.pop("name"), **ds)
            apply_datasources(emu, dataset["id"], sources, where)
            for h_index, raw_h in enumerate(history):
                entry = _check(raw_h, _HISTORY, f"{where}.history[{h_index}]")
                emu.add_history(dataset["id"], **entry)
    apply_dataflows(emu, scenario.get("workspaces") or ())
    apply_models(emu, scenario.get("workspaces") or ())
