"""The checks ``pbi-taskflow doctor`` adds for multi-tenant apps and data sources.

- the service principal profile the connection acts as (``profile_id``): does it exist and belong to the app;
- per refreshable dataset, the pre-flight checks of a refresh task (:mod:`pbi_taskflow.engine.preflight`): each data
  source bound to a gateway, the gateway online, credentials present; what cannot be checked is a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pbi_taskflow.errors import NotFoundError, PermissionDeniedError, PowerBIError

if TYPE_CHECKING:
    from pbi_taskflow.cli.doctor import DoctorReport
    from pbi_taskflow.client.models import Dataset, Workspace
    from pbi_taskflow.client.sync import PowerBIClient

#: doctor's level for each pre-flight verdict
LEVELS = {"ok": "ok", "fail": "fail", "unchecked": "warn"}


def check_profile(report: DoctorReport, client: PowerBIClient) -> bool:
    """Report the profile the client acts as; False when it is unusable (the later checks would only repeat it)."""
    from pbi_taskflow.client import api

    if not client.profile_id:
        return True
    try:
        body: Any = client.call(api.get_profile(client.profile_id)).body
    except NotFoundError:
        report.add("fail", f"profile {client.profile_id}: no service principal profile of this app has this id",
                   "set the connection's profile_id (or the task's) to an id that GET /profiles lists for this app, "
                   "or remove it to act as the service principal itself")
        return False
    except PermissionDeniedError as exc:
        report.add("warn", f"profile {client.profile_id}: its details could not be read ({exc})")
        return True
    except PowerBIError as exc:
        report.add("fail", f"profile {client.profile_id}: {exc}")
        return False
    name = body.get("displayName") if isinstance(body, dict) else None
    report.add("ok", f"acting as service principal profile {client.profile_id}"
               f"{f' ({name!r})' if name else ''}: every Power BI call carries X-PowerBI-Profile-Id")
    return True


def check_sources(report: DoctorReport, client: PowerBIClient, ws: Workspace, ds: Dataset) -> None:
    """The pre-flight verdicts of one dataset, one line per data source."""
    from pbi_taskflow.client.models import Target
    from pbi_taskflow.engine.preflight import check_dataset

    target = Target(ws.id, ws.name, ds.id, ds.name, on_dedicated_capacity=ws.is_on_dedicated_capacity,
                    profile_id=client.profile_id)
    try:
        checked = check_dataset(client, target)
    except PowerBIError as exc:
        report.add("warn", f"{ws.name!r}/{ds.name!r}: data sources not checked: {exc}")
        return
    for source in checked.checks:
        report.add(LEVELS[source.verdict], f"{checked.name}: {source.text()}", source.fix)


__all__ = ["check_profile", "check_sources"]
