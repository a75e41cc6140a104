"""Settling a refresh request whose answer was lost, from the history alone (pbi_taskflow.engine.probe.find)."""

from __future__ import annotations

from pbi_taskflow.client.models import HistoryEntry, RefreshOptions, RefreshStatus, RefreshType, Target
from pbi_taskflow.engine.probe import Probe, find, not_someone_elses

STANDARD = Target("ws", "Sales", "ds", "Revenue")
ENHANCED = Target("ws", "Sales", "ds", "Revenue", options=RefreshOptions(type=RefreshType.FULL))
SENT = "2026-01-01T12:00:00+00:00"


def _entry(rid: str, kind: str, start: str, status: RefreshStatus = RefreshStatus.UNKNOWN) -> HistoryEntry:
    return HistoryEntry(rid, kind, status, start=start)


def test_a_new_api_refresh_of_the_same_kind_started_after_the_request_is_ours() -> None:
    """Only a refresh not in the history before the request, of the request's kind, started after it, is ours."""
    probe = Probe(STANDARD, SENT, 1, known=("old",))
    mine = _entry("mine", "ViaApi", "2026-01-01T12:00:02Z")
    assert find(probe, [mine]).ours is mine
    assert find(probe, [_entry("old", "ViaApi", "2026-01-01T12:00:02Z")]).ours is None  # seen before the request
    assert find(probe, [_entry("x", "ViaEnhancedApi", "2026-01-01T12:00:02Z")]).ours is None  # other kind
    assert find(probe, [_entry("x", "Scheduled", "2026-01-01T12:00:02Z")]).ours is None  # not an API refresh


def test_a_running_refresh_that_started_before_the_request_is_someone_elses() -> None:
    """A refresh already running when the request was sent is never taken for the request's own."""
    probe = Probe(STANDARD, SENT, 1)
    earlier = _entry("earlier", "ViaApi", "2026-01-01T11:59:00Z")
    finding = find(probe, [earlier])
    assert finding.ours is None
    assert finding.other is earlier


def test_an_enhanced_candidate_with_other_options_is_someone_elses() -> None:
    """When the details show other options, the candidate is someone else's refresh (a blocker while running);
    when they cannot be read, the finding stays (followed as attached by the caller)."""
    probe = Probe(ENHANCED, SENT, 1)
    candidate = _entry("c", "ViaEnhancedApi", "2026-01-01T12:00:01Z")
    finding = find(probe, [candidate])
    assert finding.ours is candidate
    mismatch = not_someone_elses(finding, False)
    assert mismatch.ours is None
    assert mismatch.other is candidate
    assert not_someone_elses(finding, None) == finding
    assert not_someone_elses(finding, True) == finding


def test_a_probe_survives_its_json_round_trip() -> None:
    """Probes travel in the task state store and trigger payloads as plain values."""
    probe = Probe(ENHANCED, SENT, 2, known=("a", "b"))
    assert Probe.from_dict(probe.to_dict()) == probe
    assert probe.key.startswith("probe:")
