"""Operator extra links: buttons on a refresh task's page in Airflow's UI that open Power BI.

Airflow 3 computes each link once, when the task ends (success or failure), in the process that ran it,
and keeps the URL in an XCom that the UI reads. The URLs come from the task's result records
(``return_value``): each carries the ``web_url`` of its semantic model in the portal of the connection's
cloud, so sovereign clouds link to their own portal (``app.powerbigov.us``, ``app.powerbi.cn``, ...).

- **Power BI semantic model**: the model's page in the portal (its last refresh; the refresh history is
  one click away). With several models, the first that did not succeed; none when they all did (every
  model's link is in the records and in the task log's summary).
- **Power BI workspace**: the workspace holding the models (with several workspaces, the one of the first
  model that did not succeed, else of the first model).

A task that ended before any refresh had a result (a wrong connection, nothing selected) gets no link:
the button is shown disabled. Computing a link never raises, whatever the XCom holds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

try:
    from airflow.sdk import BaseOperatorLink
except ImportError:  # pragma: no cover - every supported Airflow has it
    from airflow.models.baseoperatorlink import BaseOperatorLink  # type: ignore[no-redef]

log = logging.getLogger("pbi_taskflow.airflow.links")

def _records(ti_key: Any) -> list[Mapping[str, Any]]:
    """The task's result records (its ``return_value`` XCom), or ``[]``."""
    try:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key="return_value")
    except Exception:
        log.debug("No Power BI result records for the links of %s", ti_key, exc_info=True)
        return []
    return records_of(value)


def records_of(value: Any) -> list[Mapping[str, Any]]:
    """The result records in an XCom value (a list of ``RefreshResult.to_dict()``), skipping anything else."""
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        return []
    return [r for r in value if isinstance(r, Mapping) and r.get("dataset_id") and r.get("workspace_id")]


def _succeeded(record: Mapping[str, Any]) -> bool:
    from pbi_taskflow.client.models import (
        RefreshStatus,  # not at import: DAG files import the operator, and this module
    )

    return RefreshStatus.parse(str(record.get("status") or "")).is_success


def _focus(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The record a person most likely wants to open: the first that did not succeed, else the first."""
    for record in records:
        if not _succeeded(record):
            return record
    return records[0] if records else None


def dataset_link(records: Sequence[Mapping[str, Any]]) -> str:
    """The semantic model's portal URL: the only model's, else the first failed one's, else ``""``."""
    models = {(r["workspace_id"], r["dataset_id"]) for r in records}
    if len(models) > 1 and all(_succeeded(r) for r in records):
        return ""
    record = _focus(records)
    url = record.get("web_url") if record else None
    return url if isinstance(url, str) and url.startswith("https://") else ""


def workspace_link(records: Sequence[Mapping[str, Any]]) -> str:
    """The portal URL of the workspace of :func:`_focus`'s record, in the same portal as its ``web_url``."""
    record = _focus(records)
    if record is None:
        return ""
    url = record.get("web_url")
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        return ""
    return f"https://{parts.netloc}/groups/{record['workspace_id']}/list"


class PowerBIDatasetLink(BaseOperatorLink):  # type: ignore[misc]
    """The refreshed semantic model in the Power BI portal (see the module docstring for several models)."""

    name = "Power BI semantic model"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return dataset_link(_records(ti_key))


class PowerBIWorkspaceLink(BaseOperatorLink):  # type: ignore[misc]
    """The workspace of the refreshed semantic models in the Power BI portal."""

    name = "Power BI workspace"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return workspace_link(_records(ti_key))


__all__ = ["PowerBIDatasetLink", "PowerBIWorkspaceLink", "dataset_link", "records_of", "workspace_link"]
