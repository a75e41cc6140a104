"""pbi_fake_client: a programmable in-memory client that records calls."""

from __future__ import annotations

import pytest

from pbi_taskflow.client.models import RefreshStatus
from pbi_taskflow.errors import NotFoundError, RefreshAlreadyRunningError, ThrottledError


def test_refresh_runs_through_programmed_polls_to_outcome(pbi_fake_client):
    """A triggered refresh reports Unknown for the programmed number of polls, then its outcome."""
    pbi_fake_client.add_dataset("Finance", "Sales", polls=2, outcome="Failed", error_code="ModelRefreshFailed")
    handle = pbi_fake_client.trigger_refresh(pbi_fake_client.target("Finance", "Sales"))
    states = [pbi_fake_client.get_refresh_state(handle).status for _ in range(3)]
    assert states == [RefreshStatus.UNKNOWN, RefreshStatus.UNKNOWN, RefreshStatus.FAILED]
    assert pbi_fake_client.get_refresh_state(handle).error_code == "ModelRefreshFailed"
    assert pbi_fake_client.refresh_history("Finance", "Sales")[0].status == RefreshStatus.FAILED


def test_a_refresh_keeps_its_start_and_end_across_polls(pbi_fake_client):
    """Every poll of one refresh reports the same start; once finished, the same end (as the history does)."""
    pbi_fake_client.add_dataset("Finance", "Sales", polls=2)
    handle = pbi_fake_client.trigger_refresh(pbi_fake_client.target("Finance", "Sales"))
    states = [pbi_fake_client.get_refresh_state(handle) for _ in range(4)]
    assert len({s.start for s in states}) == 1
    assert states[2].end is not None
    assert states[3].end == states[2].end
    [entry] = pbi_fake_client.refresh_history("Finance", "Sales")
    assert (entry.start, entry.end) == (states[0].start, states[2].end)

def test_calls_are_recorded_as_mocks(pbi_fake_client):
    """Each method is a MagicMock, so tests assert on calls and arguments."""
    pbi_fake_client.add_dataset("Finance", "Sales")
    pbi_fake_client.list_datasets("Finance")
    pbi_fake_client.list_datasets.assert_called_once_with("Finance")
    assert pbi_fake_client.trigger_refresh.call_count == 0


def test_programmed_errors_and_conflicts(pbi_fake_client):
    """fail_next raises once; a second trigger while running is a conflict; unknown names are NotFound."""
    pbi_fake_client.add_dataset("Finance", "Sales", polls=5)
    target = pbi_fake_client.target("Finance", "Sales")
    pbi_fake_client.fail_next("trigger_refresh", ThrottledError("slow down", status=429, retry_after=1))
    with pytest.raises(ThrottledError):
        pbi_fake_client.trigger_refresh(target)
    handle = pbi_fake_client.trigger_refresh(target)
    with pytest.raises(RefreshAlreadyRunningError):
        pbi_fake_client.trigger_refresh(target)
    pbi_fake_client.cancel_refresh(handle)
    assert pbi_fake_client.get_refresh_state(handle).status == RefreshStatus.CANCELLED
    with pytest.raises(NotFoundError, match="Nope"):
        pbi_fake_client.target("Finance", "Nope")
    with pytest.raises(ValueError, match="unknown method"):
        pbi_fake_client.fail_next("no_such_method", RuntimeError())


def test_fake_mirrors_the_real_client_surface():
    """Every faked method exists on PowerBIClient, so tests written against the fake fit the real client."""
    from pbi_taskflow.client.sync import PowerBIClient
    from pbi_taskflow.testing.fake_client import _METHODS

    assert [m for m in _METHODS if not callable(getattr(PowerBIClient, m, None))] == []


def test_resolve_names_to_a_target(pbi_fake_client):
    """resolve() turns a Refresh of names into ids, like the real client."""
    from pbi_taskflow.client.models import Refresh

    ds = pbi_fake_client.add_dataset("Finance", "Sales")
    target = pbi_fake_client.resolve(Refresh("Sales", "Finance"))
    assert (target.workspace_name, target.dataset_id) == ("Finance", ds.dataset.id)
    handle = pbi_fake_client.trigger_refresh(target)
    assert pbi_fake_client.running_refresh(target.workspace_id, target.dataset_id).request_id == handle.refresh_id
