"""`pbi-taskflow refresh`: trigger and watch from a terminal; the exit code reflects the outcome."""

from __future__ import annotations

import pytest

from pbi_taskflow.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
def finance(pbi_connection, emulator, clean_env):
    emulator.add_workspace("Finance")
    emulator.add_dataset("Finance", "Sales", duration=0.3)
    emulator.add_dataset("Finance", "Inventory", duration=0.3)
    return emulator


def _refresh(*args):
    return main(["refresh", "--conn-id", "powerbi_default", "--workspace", "Finance", "--poll-interval", "0.2", *args])


def test_completed_refreshes_exit_0(finance, capsys):
    """Two datasets that complete give exit code 0 and a completion message."""
    assert _refresh("Sales", "Inventory") == 0
    assert "All 2 refresh(es) completed." in capsys.readouterr().out
    assert finance.count("refresh_post") == 2


def test_redirected_output_ends_the_table_before_the_verdict(finance, capsys):
    """With output redirected (not a terminal), the verdict starts on its own line after the status table."""
    assert _refresh("Sales") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "All 1 refresh(es) completed." in lines
    assert lines[lines.index("All 1 refresh(es) completed.") - 1].startswith("└")


def test_failed_refresh_exits_1_with_its_error(finance, capsys):
    """A dataset whose refresh fails gives exit code 1 and its Power BI error."""
    finance.set_refresh("Inventory", outcome="Failed", error_code="ModelRefreshFailed_CredentialsNotSpecified")
    assert _refresh("Sales", "Inventory") == 1
    assert "Inventory: Failed - ModelRefreshFailed_CredentialsNotSpecified" in capsys.readouterr().out


def test_unknown_dataset_exits_2_without_triggering(finance, capsys):
    """A dataset name that does not exist gives exit code 2 and no refresh is started."""
    assert _refresh("Slaes") == 2
    assert "Slaes" in capsys.readouterr().out
    assert finance.count("refresh_post") == 0


def test_watch_timeout_exits_1_and_leaves_the_refresh_running(finance, capsys):
    """When watching times out the exit code is 1 and the refresh is not cancelled."""
    finance.set_refresh("Sales", duration=30)
    assert _refresh("Sales", "--timeout", "0.5") == 1
    assert "Sales: still running after 0.5 s" in capsys.readouterr().out
    assert finance.count("cancel") == 0


def test_a_refresh_power_bi_refuses_exits_1_not_2(pbi_connection, emulator, clean_env, capsys):
    """Power BI refusing the refresh itself (the shared capacity's daily quota) is an outcome, exit 1, not a usage
    error; the other dataset is still refreshed and watched."""
    emulator.add_workspace("Finance", dedicated=False)
    emulator.add_dataset("Finance", "Sales", duration=0.3)
    emulator.add_dataset("Finance", "Inventory", duration=0.3)
    for hours in range(8):
        emulator.add_history("Sales", status="Completed", refresh_type="ViaApi", ago=600 + hours * 600)
    assert _refresh("Sales", "Inventory") == 1
    out = capsys.readouterr().out
    assert "Sales: Power BI refused the refresh" in out
    assert "exceeded" in out
    assert "Sales: not refreshed (refused by Power BI, see above)" in out
    assert emulator.count("refresh_post") == 2
    assert [r.status for r in emulator.requests if r.endpoint == "refresh_post"] == [400, 202]


def test_a_running_refresh_shows_as_running_not_unknown(finance, capsys):
    """The live table shows Power BI's in-progress `Unknown` (a standard refresh's history status) as Running."""
    finance.set_refresh("Sales", duration=30)
    assert _refresh("Sales", "--timeout", "0.5") == 1
    out = capsys.readouterr().out
    assert "Running" in out
    assert "Unknown" not in out
