"""The checks ``pbi-taskflow doctor`` adds for multi-tenant apps and data sources.

- the service principal profile the connection acts as (``profile_id``): does it exist and belong to the app;
- per refreshable dataset, the pre-flight checks of a refresh task (:mod:`pbi_taskflow.engine.preflight`): each data
  source bound to a gateway, the gateway online, credentials present; what cannot be checked is a warning;
- per workspace, the lineage graph a lineage-ordered refresh (``upstream="refresh"``) would follow: its datasets,
  the dataflows they read and composite models, by depth; a cycle or unreadable lineage is a failure.
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


def check_lineage(report: DoctorReport, client: PowerBIClient, ws: Workspace, datasets: list[Dataset]) -> None:
    """Print the workspace's lineage graph by depth, when its datasets read dataflows or other models."""
    from pbi_taskflow.client.models import Target
    from pbi_taskflow.engine.lineage import read_graph
    from pbi_taskflow.errors import LineageCycleError, LineageError

    targets = [Target(ws.id, ws.name, d.id, d.name, on_dedicated_capacity=ws.is_on_dedicated_capacity,
                      profile_id=client.profile_id) for d in datasets if d.is_refreshable]
    if not targets:
        return
    try:
        graph, _ = read_graph(client, targets, add_upstream=True)
    except LineageCycleError as exc:
        report.add("fail", f"lineage of {ws.name!r}: {exc}", "break the cycle: a dataflow must not read itself "
                   "through others")
        return
    except (LineageError, PowerBIError) as exc:
        report.add("warn", f"lineage of {ws.name!r} not read: {exc}")
        return
    if not any(graph.upstream_of(node.key) for node in graph):
        report.add("info", f"lineage of {ws.name!r}: no dataset reads a dataflow or another model")
        return
    levels = len(graph.levels())
    report.add("ok", f"lineage of {ws.name!r}: {len(graph)} item(s) in {levels} level(s); upstream='refresh' "
               "refreshes them in this order:")
    for line in graph.render():
        report.add("info", f"  {line}")


__all__ = ["check_lineage", "check_profile", "check_sources"]
