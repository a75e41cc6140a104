"""The examples of docs/testing.md run as written: the scenario file seeds an emulator, and the script using the
emulator and the receivers outside pytest delivers its alerts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def _block(heading: str, language: str) -> str:
    """The first ``language`` code block after ``heading`` in docs/testing.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def test_the_documented_scenario_file_seeds_the_emulator(tmp_path: Path) -> None:
    """Every key of the documented scenario format is accepted, tables included."""
    from pbi_taskflow.emulator import Emulator

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(_block("#### Scenario files", "yaml"))
    assert yaml.safe_load(scenario.read_text())["workspaces"][0]["datasets"][0]["tables"] == ["Orders", "Customers"]
    emulator = Emulator(seed=str(scenario))
    assert emulator.state.dataset("Sales").tables == {"Orders": ["Orders"], "Customers": ["Customers"]}
    assert [run.outcome for run in emulator.state.dataset("Sales").runs] == ["Completed"]
    assert emulator.time_scale == 1.0


@pytest.mark.integration
@pytest.mark.slow
def test_the_documented_script_outside_pytest_delivers_its_alerts(tmp_path: Path) -> None:
    """The script runs in a fresh Python without pytest and prints the state, the card's title and the subject."""
    script = tmp_path / "try_alert.py"
    script.write_text(_block("#### Receivers and the emulator outside pytest", "python"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTEST_CURRENT_TEST"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-3:] == ["failed", "Power BI refresh failed",
                                             "[Airflow] Power BI refresh failed: try_alert.refresh"]
