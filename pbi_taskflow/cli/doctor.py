"""``pbi-taskflow doctor``: check a Power BI connection end to end, with an actionable message per problem.

Checks, in order (later checks need the earlier ones): the connection's fields, a token (tenant and
app), the service principal profile it acts as (if any), the workspaces it can see, each workspace's capacity
type, datasets and remaining refresh quota, each refreshable dataset's data sources, gateway bindings and gateway
status (the pre-flight checks of a refresh task, see :mod:`pbi_taskflow.cli.doctor_sources`), and the drift
between a workspace config file and Power BI, table names included
where Power BI lists a model's tables (push datasets, and any dataset of the emulator seeded with tables).

Every line's text starts in the same column, after ``[ok]``, ``[warn]``, ``[FAIL]`` or blanks (information).
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbi_taskflow.cli.doctor_sources import check_lineage, check_profile, check_sources
from pbi_taskflow.client.models import parse_timestamp
from pbi_taskflow.errors import AuthenticationError, ConfigurationError, PermissionDeniedError, PowerBIError

if TYPE_CHECKING:
    from pbi_taskflow.client.models import Dataset, Workspace
    from pbi_taskflow.client.settings import ConnectionSettings
    from pbi_taskflow.client.sync import PowerBIClient

__all__ = ["Check", "DoctorReport", "connection_settings", "run_doctor"]

#: Refreshes per dataset per 24 hours on shared (Pro) capacity.
SHARED_DAILY_REFRESHES = 8


@dataclass(frozen=True)
class Check:
    """One finding.

    :param level: ``ok``, ``info``, ``warn`` or ``fail``.
    :param message: what was found.
    :param fix: what to do about it (for ``warn`` and ``fail``).
    """

    level: str
    message: str
    fix: str | None = None

    def render(self) -> str:
        marker = MARKERS[self.level]
        text = f"{marker} {self.message}"
        if self.fix:
            text += f"\n{' ' * (len(marker) + 1)}-> {self.fix}"
        return text


#: The marker of each level, all as wide, so that every message starts in the same column.
MARKERS = {"ok": "[ok]  ", "info": "      ", "warn": "[warn]", "fail": "[FAIL]"}


@dataclass
class DoctorReport:
    """All findings; :attr:`ok` is False when any finding is a failure."""

    checks: list[Check] = field(default_factory=list)

    def add(self, level: str, message: str, fix: str | None = None) -> Check:
        check = Check(level, message, fix)
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        return not any(c.level == "fail" for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.level == "fail"]

    def render(self) -> str:
        lines = [c.render() for c in self.checks]
        count = len(self.problems)
        lines.append("No problems found." if count == 0 else f"{count} problem(s) found.")
        return "\n".join(lines)


def connection_settings(conn_id: str) -> ConnectionSettings:
    """Settings of an Airflow connection, outside any task.

    ``AIRFLOW_CONN_<CONN_ID>`` (JSON or URI form) is read directly; otherwise the connection is looked
    up through Airflow's configured secrets backends and metadata database.

    :raises ConfigurationError: when the connection does not exist or its fields are invalid.
    """
    from pbi_taskflow.client.settings import ConnectionSettings

    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw and raw.lstrip().startswith("{"):
        try:
            mapping = json.loads(raw)
        except json.JSONDecodeError as exc:
            msg = f"AIRFLOW_CONN_{conn_id.upper()} is not valid JSON ({exc.msg} at position {exc.pos})"
            raise ConfigurationError(msg) from exc
        return ConnectionSettings.from_mapping(mapping, conn_id=conn_id)
    from pbi_taskflow.airflow.connection import settings_from_connection

    try:
        from airflow.models.connection import Connection

        conn = Connection(conn_id=conn_id, uri=raw) if raw else Connection.get_connection_from_secrets(conn_id)
    except Exception as exc:
        msg = (
            f"Connection {conn_id!r} not found ({type(exc).__name__}): define it in Airflow, in a secrets backend, "
            f"or as AIRFLOW_CONN_{conn_id.upper()} (JSON or URI)"
        )
        raise ConfigurationError(msg) from exc
    return settings_from_connection(conn)


def _claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return data if isinstance(data, dict) else {}
    except (IndexError, ValueError):
        return {}


def _closest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _refreshes_last_day(client: PowerBIClient, ws: Workspace, ds: Dataset) -> int | None:
    try:
        history = client.refresh_history(ws.id, ds.id, top=60, _names=(ws.name, ds.name))
    except PowerBIError:
        return None
    since = datetime.now(timezone.utc) - timedelta(hours=24)
    count = 0
    for entry in history:
        start = parse_timestamp(entry.start)
        if start is not None and start >= since:
            count += 1
    return count


def _load_config(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        msg = f"Cannot read the workspace config {path}: {exc}"
        raise ConfigurationError(msg) from exc
    if not isinstance(data, Mapping) or not data.get("workspace") or not isinstance(data.get("datasets"), list):
        msg = f"{path} must have 'workspace' and a 'datasets' list (the layout of config/powerbi.yaml)"
        raise ConfigurationError(msg)
    return data


def _check_workspace(report: DoctorReport, client: PowerBIClient, ws: Workspace) -> list[Dataset] | None:
    capacity = "dedicated capacity (Premium/Fabric)" if ws.is_on_dedicated_capacity else "shared capacity (Pro)"
    try:
        datasets = client.list_datasets(ws)
    except PermissionDeniedError as exc:
        report.add("fail", f"workspace {ws.name!r}: cannot list datasets: {exc}",
                   "add the service principal to the workspace as Member or Admin "
                   "(Contributor is usually enough to refresh)")
        return None
    except PowerBIError as exc:
        report.add("fail", f"workspace {ws.name!r}: cannot list datasets: {exc}")
        return None
    names = ", ".join(d.name for d in datasets[:10]) + (" ..." if len(datasets) > 10 else "")
    report.add("ok", f"workspace {ws.name!r} ({ws.id}) on {capacity}: {len(datasets)} dataset(s){': ' + names if names else ''}")
    for ds in datasets:
        if not ds.is_refreshable:
            report.add("info", f"{ws.name!r}/{ds.name!r} is not refreshable (push/streaming dataset or no data source)")
        elif not ws.is_on_dedicated_capacity:
            used = _refreshes_last_day(client, ws, ds)
            if used is not None:
                left = max(SHARED_DAILY_REFRESHES - used, 0)
                level = "warn" if left == 0 else "info"
                report.add(level, f"{ws.name!r}/{ds.name!r}: {left} of {SHARED_DAILY_REFRESHES} daily refreshes left on "
                           "shared capacity",
                           "wait for the 24-hour window to roll, or move the workspace to a Premium/Fabric capacity"
                           if left == 0 else None)
        if ds.is_refreshable:
            check_sources(report, client, ws, ds)
    if ws.is_on_dedicated_capacity:
        report.add("info", f"{ws.name!r} is on dedicated capacity: no daily limit on API refreshes; enhanced refresh "
                   "(tables) available")
    check_lineage(report, client, ws, datasets)
    return datasets


def _check_options(report: DoctorReport, path: Path, config: Mapping[str, Any], ws: Workspace) -> bool:
    """Validate ``refresh_options`` and check the capacity supports them; return True when there is a problem."""
    from pbi_taskflow.client.models import Refresh

    options = config.get("refresh_options") or {}
    if not options:
        return False
    try:
        enhanced = Refresh("check", ws.name, **dict(options)).options.is_enhanced
    except (TypeError, ValueError) as exc:
        report.add("fail", f"{path.name}: refresh_options: {exc}", "fix the option in the config")
        return True
    if enhanced and not ws.is_on_dedicated_capacity:
        report.add("fail", f"{path.name}: refresh_options make every refresh an enhanced refresh, which needs a "
                   f"Premium/Fabric capacity, and {ws.name!r} is on shared capacity",
                   "remove refresh_options (plain whole-model refreshes) or move the workspace to a dedicated capacity")
        return True
    return False


def _table_names(tables: Any) -> list[str]:
    """The table names of a config's ``tables`` (a list of names, or a mapping of table to partitions)."""
    if isinstance(tables, Mapping):
        return [str(name) for name in tables]
    if isinstance(tables, str):
        return [tables]
    return [str(name) for name in tables] if isinstance(tables, Iterable) else []


def _check_tables(report: DoctorReport, client: PowerBIClient, path: Path, ws: Workspace, ds: Dataset,
                  tables: Any) -> bool:
    """Compare the configured tables with the model's, where Power BI lists them; return True on a mismatch.

    Power BI's REST API lists the tables of push datasets only (``GET .../tables``) and has no listing for
    other models short of a DAX query; for those the check is skipped, saying so. The emulator lists the
    tables of any dataset seeded with them.
    """
    from pbi_taskflow.client.api import calls
    from pbi_taskflow.errors import InvalidRequestError

    request = calls.ApiRequest("GET", f"/groups/{ws.id}/datasets/{ds.id}/tables", "tables", "list tables",
                               workspace=ws.name, dataset=ds.name)
    wanted = _table_names(tables)
    try:
        listed = client.call(request).body
    except (InvalidRequestError, PermissionDeniedError):
        report.add("info", f"{path.name}: tables of {ds.name!r} not checked ({', '.join(wanted)}): Power BI lists "
                   "the tables of push datasets only; a misspelt table makes the refresh fail with a 400 naming it")
        return False
    except PowerBIError as exc:
        report.add("warn", f"{path.name}: tables of {ds.name!r} not checked: {exc}")
        return False
    known = [str(t.get("name")) for t in (listed or {}).get("value", []) if isinstance(t, Mapping)]
    lowered = {name.lower() for name in known}
    missing = [name for name in wanted if name.lower() not in lowered]
    for name in missing:
        report.add("fail", f"{path.name}: table {name!r} does not exist in dataset {ds.name!r}{_closest(name, known)}",
                   "fix the table name in the config (Power BI refuses a refresh naming a missing table)")
    if not missing:
        report.add("ok", f"{path.name}: tables of {ds.name!r} exist: {', '.join(wanted)}")
    return bool(missing)


def _check_drift(report: DoctorReport, client: PowerBIClient, path: Path, workspaces: list[Workspace]) -> None:
    try:
        config = _load_config(path)
    except ConfigurationError as exc:
        report.add("fail", str(exc))
        return
    wanted = str(config["workspace"]).strip()
    ws = next((w for w in workspaces if wanted.lower() in (w.id.lower(), w.name.lower())), None)
    if ws is None:
        report.add("fail", f"{path.name}: workspace {wanted!r} is not visible to the service principal"
                   f"{_closest(wanted, [w.name for w in workspaces])}",
                   "fix the name in the config, or add the service principal to that workspace")
        return
    try:
        datasets = client.list_datasets(ws)
    except PowerBIError as exc:
        report.add("fail", f"{path.name}: cannot list the datasets of {ws.name!r}: {exc}")
        return
    by_key = {d.name.lower(): d for d in datasets} | {d.id.lower(): d for d in datasets}
    drift = False
    configured: set[str] = set()
    for item in config["datasets"]:
        name = str(item.get("name") if isinstance(item, Mapping) else item).strip()
        ds = by_key.get(name.lower())
        if ds is None:
            drift = True
            report.add("fail", f"{path.name}: dataset {name!r} does not exist in {ws.name!r}"
                       f"{_closest(name, [d.name for d in datasets])}",
                       "fix the name in the config, or publish the dataset to the workspace")
            continue
        configured.add(ds.id)
        if not ds.is_refreshable:
            drift = True
            report.add("fail", f"{path.name}: dataset {ds.name!r} cannot be refreshed (push dataset or no data source)",
                       "remove it from the config")
        tables = item.get("tables") if isinstance(item, Mapping) else None
        if tables and not ws.is_on_dedicated_capacity:
            drift = True
            report.add("fail", f"{path.name}: dataset {ds.name!r} lists tables, but table refreshes need a "
                       f"Premium/Fabric capacity and {ws.name!r} is on shared capacity",
                       "remove 'tables' (refresh the whole model) or move the workspace to a dedicated capacity")
        elif tables:
            drift = _check_tables(report, client, path, ws, ds, tables) or drift
    drift = _check_options(report, path, config, ws) or drift
    extra = sorted(d.name for d in datasets if d.id not in configured and d.is_refreshable)
    if extra:
        report.add("info", f"{path.name}: datasets in {ws.name!r} not in the config: {', '.join(extra)}")
    if not drift:
        report.add("ok", f"{path.name} matches Power BI: workspace {ws.name!r}, {len(configured)} dataset(s)")


def run_doctor(
    conn_id: str,
    *,
    config: str | os.PathLike[str] | None = None,
    client_factory: Callable[[ConnectionSettings], PowerBIClient] | None = None,
) -> DoctorReport:
    """Check the connection ``conn_id``; never raises for problems it can describe.

    :param conn_id: the Airflow connection id.
    :param config: a workspace config file (``config/powerbi.yaml`` layout) to compare with Power BI.
    :param client_factory: builds the client from the settings (default ``settings.build_client()``).
    """
    report = DoctorReport()
    try:
        settings = connection_settings(conn_id)
    except ConfigurationError as exc:
        for problem in getattr(exc, "problems", None) or [str(exc)]:
            report.add("fail", f"connection {conn_id!r}: {problem}")
        return report
    cloud = settings.cloud_name
    report.add("ok", f"connection {conn_id!r}: auth method {settings.auth_method}, cloud {cloud}, "
               f"tenant {settings.tenant_id or '-'}, client id {settings.client_id or '-'}"
               f"{f', profile {settings.profile_id}' if settings.profile_id else ''}")
    try:
        client = client_factory(settings) if client_factory else settings.build_client()
        # Ask Entra for a new token: a token cached in this process proves nothing about the credential.
        cached = client.credential.get_token()
        client.credential.invalidate(cached.token)
        token = client.credential.get_token()
    except AuthenticationError as exc:
        report.add("fail", f"token: {exc}")
        return report
    except PowerBIError as exc:
        report.add("fail", f"token: {exc}")
        return report
    claims = _claims(token.token)
    minutes = max(int((token.expires_on - time.time()) / 60), 0)
    app = claims.get("app_displayname") or claims.get("appid") or claims.get("azp") or settings.client_id
    report.add("ok", f"token: issued by tenant {claims.get('tid', settings.tenant_id)} to app {app} "
               f"(valid {minutes} more minutes)")
    if not check_profile(report, client):
        client.close()
        return report
    try:
        workspaces = client.list_workspaces()
    except PermissionDeniedError as exc:
        report.add("fail", f"workspaces: {exc}",
                   "in the Power BI admin portal enable 'Service principals can use Fabric APIs' for a security "
                   "group holding this app, then add the app to the workspace")
        return report
    except PowerBIError as exc:
        report.add("fail", f"workspaces: {exc}")
        return report
    if not workspaces:
        report.add("fail", "workspaces: the service principal sees no workspace",
                   "add the app (or its security group) to the workspace as Member or Admin "
                   "(Contributor is usually enough to refresh)")
    else:
        report.add("ok", f"workspaces visible: {len(workspaces)}")
    if settings.allowed_workspaces:
        report.add("info", f"allowed_workspaces on the connection: {', '.join(settings.allowed_workspaces)}")
    for ws in workspaces:
        _check_workspace(report, client, ws)
    if config is not None:
        _check_drift(report, client, Path(config), workspaces)
    client.close()
    return report
