"""Unit tests for pbi_taskflow.airflow.lineage: asset uris, event extras and tolerant OpenLineage facets."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

from pbi_taskflow.airflow.lineage import dataset_uri, event_extra, openlineage_facets
from pbi_taskflow.client.models import RefreshResult, RefreshStatus


def _result(status: RefreshStatus) -> RefreshResult:
    return RefreshResult(
        workspace_id="AAAA-1", workspace_name="Sales", dataset_id="BBBB-2", dataset_name="Revenue",
        refresh_id="r1", kind="standard", status=status, duration_s=3.0,
    )


def test_dataset_uri_is_lowercase_powerbi_scheme() -> None:
    """Asset uris are powerbi://<workspace_id>/<dataset_id>, lower-cased so id casing never splits an asset."""
    assert dataset_uri("AAAA-1", "BBBB-2") == "powerbi://aaaa-1/bbbb-2"


def test_event_extra_names_the_model_and_outcome() -> None:
    """The asset event extra carries names, ids, refresh id and status."""
    extra = event_extra(_result(RefreshStatus.COMPLETED))
    assert extra["dataset_name"] == "Revenue"
    assert extra["workspace_name"] == "Sales"
    assert extra["status"] == "Completed"
    assert extra["refresh_id"] == "r1"


def test_openlineage_facets_are_the_providers_with_completed_models_as_outputs() -> None:
    """With the OpenLineage provider, the facets are its OperatorLineage; each completed model is an output."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    facets = openlineage_facets([_result(RefreshStatus.COMPLETED), _result(RefreshStatus.FAILED)])

    assert isinstance(facets, OperatorLineage)
    assert facets.inputs == []
    assert facets.outputs == [Dataset(namespace="powerbi://aaaa-1", name="bbbb-2")]


def test_without_the_openlineage_provider_the_facets_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the provider cannot be imported, the operator reports no facets instead of failing."""
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    assert openlineage_facets([_result(RefreshStatus.COMPLETED)]) is None


class _Recorder:
    def __init__(self) -> None:
        self.added: list[tuple[Any, Any, dict[str, Any]]] = []

    def __getitem__(self, alias: Any) -> Any:
        recorder = self

        class _Accessor:
            def add(self, asset: Any, extra: dict[str, Any]) -> None:
                recorder.added.append((alias, asset, extra))

        return _Accessor()


def test_asset_events_cover_this_try_and_completed_earlier_tries() -> None:
    """Completed refreshes of this try and of earlier tries get one event each; failures and skips get none."""
    from pbi_taskflow.airflow.lineage import ALIAS_NAME, emit_asset_events

    events = _Recorder()
    earlier = dataclasses.replace(_result(RefreshStatus.COMPLETED), dataset_id="CCCC-3", dataset_name="Costs")
    count = emit_asset_events(
        {"outlet_events": events},
        [_result(RefreshStatus.COMPLETED), _result(RefreshStatus.FAILED), _result(RefreshStatus.SKIPPED)],
        earlier=[(1, earlier), (1, _result(RefreshStatus.FAILED))],
    )
    assert count == 2
    assert [(alias.name, asset.uri) for alias, asset, _ in events.added] == [
        (ALIAS_NAME, "powerbi://aaaa-1/bbbb-2"), (ALIAS_NAME, "powerbi://aaaa-1/cccc-3"),
    ]
    assert "completed_in_try" not in events.added[0][2]
    assert events.added[1][2]["completed_in_try"] == 1
    assert events.added[1][2]["dataset_name"] == "Costs"


def test_no_outlet_events_in_the_context_emits_nothing() -> None:
    """Outside a task (no outlet_events), nothing is emitted and nothing fails."""
    from pbi_taskflow.airflow.lineage import emit_asset_events

    assert emit_asset_events({}, [_result(RefreshStatus.COMPLETED)]) == 0
