"""Asset events and OpenLineage facets for refreshed semantic models and dataflows.

Every ``@powerbi_refresh`` task declares the asset alias ``powerbi-refreshes`` at parse time and,
when it succeeds, adds one asset event per refreshed dataset with the uri
``powerbi://<workspace_id>/<dataset_id>``, and per refreshed dataflow with the uri
``powerbi://<workspace_id>/dataflows/<dataflow_id>`` (the asset's name is the same uri, so
``Asset(uri="powerbi://…")`` in a downstream DAG matches it). Names and the outcome go in the
event's extra. A refresh that completed in an earlier, failed try of the same DAG run gets its event
from the try that succeeds, with ``completed_in_try`` in the extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbi_taskflow.client.models import RefreshResult

ALIAS_NAME = "powerbi-refreshes"
SCHEME = "powerbi"


def dataset_uri(workspace_id: str, dataset_id: str) -> str:
    """The asset uri of a semantic model."""
    return f"{SCHEME}://{workspace_id.lower()}/{dataset_id.lower()}"


def dataflow_uri(workspace_id: str, dataflow_id: str) -> str:
    """The asset uri of a dataflow."""
    return f"{SCHEME}://{workspace_id.lower()}/dataflows/{dataflow_id.lower()}"


def result_uri(result: RefreshResult) -> str:
    """The asset uri of what ``result`` refreshed."""
    if result.kind == "dataflow":
        return dataflow_uri(result.workspace_id, result.dataset_id)
    return dataset_uri(result.workspace_id, result.dataset_id)


def outlet_alias() -> Any:
    """The :class:`~airflow.sdk.AssetAlias` every refresh task declares as outlet."""
    from airflow.sdk import AssetAlias

    return AssetAlias(ALIAS_NAME)


def event_extra(result: RefreshResult) -> dict[str, Any]:
    return {
        "workspace_id": result.workspace_id,
        "workspace_name": result.workspace_name,
        "dataset_id": result.dataset_id,
        "dataset_name": result.dataset_name,
        "refresh_id": result.refresh_id,
        "kind": result.kind,
        "status": result.status.value,
        "start": result.start,
        "end": result.end,
        "duration_s": result.duration_s,
    }


def emit_asset_events(
    context: Mapping[str, Any],
    results: Iterable[RefreshResult],
    *,
    earlier: Iterable[tuple[int, RefreshResult]] = (),
) -> int:
    """Add an asset event through the alias for each completed refresh; return how many.

    :param earlier: ``(try, result)`` of refreshes completed by earlier tries of this DAG run that this
        try skipped; they get their event now, with ``completed_in_try`` in the extra.
    """
    from airflow.sdk import Asset

    from pbi_taskflow.client.models import RefreshStatus

    events = context.get("outlet_events")
    if events is None:
        return 0
    alias = outlet_alias()
    pending = [(r, event_extra(r)) for r in results if r.status is RefreshStatus.COMPLETED]
    pending += [(r, {**event_extra(r), "completed_in_try": n}) for n, r in earlier if r.status is RefreshStatus.COMPLETED]
    for result, extra in pending:
        uri = result_uri(result)
        events[alias].add(Asset(name=uri, uri=uri), extra=extra)
    return len(pending)


def openlineage_facets(results: Iterable[RefreshResult]) -> Any:
    """``OperatorLineage`` naming the refreshed datasets and dataflows (``dataflows/<id>``) as outputs, or None without
    OpenLineage."""
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
    except ImportError:
        return None
    from pbi_taskflow.client.models import RefreshStatus

    outputs = [
        Dataset(namespace=f"{SCHEME}://{r.workspace_id.lower()}",
                name=("dataflows/" if r.kind == "dataflow" else "") + r.dataset_id.lower())
        for r in results
        if r.status is RefreshStatus.COMPLETED
    ]
    return OperatorLineage(inputs=[], outputs=outputs)


__all__ = ["ALIAS_NAME", "dataflow_uri", "dataset_uri", "result_uri", "emit_asset_events", "event_extra", "openlineage_facets", "outlet_alias"]
