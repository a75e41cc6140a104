"""Seeding the emulator from mappings and YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pbi_taskflow.emulator import Emulator
from pbi_taskflow.emulator.scenario import DEFAULT_SCENARIO

from .helpers import msal_app, token


def test_seed_from_yaml_file(emu: Emulator, api: Any, tmp_path: Path) -> None:
    """A YAML scenario creates workspaces, datasets with knobs, history entries and apps."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "apps:\n"
        "  - client_id: 66666666-0000-0000-0000-000000000001\n"
        "    secret: other-secret\n"
        "workspaces:\n"
        "  - name: Team\n"
        "    id: 77777777-0000-0000-0000-000000000001\n"
        "    dedicated: false\n"
        "    datasets:\n"
        "      - name: Budget\n"
        "        duration: 30\n"
        "        outcome: Failed\n"
        "        history:\n"
        "          - {status: Completed, ago: 600, duration: 45, refresh_type: Scheduled}\n",
        encoding="utf-8",
    )
    emu.seed(scenario)
    group = api.get(f"{emu.api_root}/groups", params={"$filter": "name eq 'Team'"}).json()["value"][0]
    assert (group["id"], group["isOnDedicatedCapacity"]) == ("77777777-0000-0000-0000-000000000001", False)
    dataset = emu.state.dataset("Budget")
    assert (dataset.duration, dataset.outcome) == (30.0, "Failed")
    history = api.get(f"{emu.api_root}/groups/{group['id']}/datasets/{dataset.id}/refreshes").json()["value"]
    assert [(e["status"], e["refreshType"]) for e in history] == [("Completed", "Scheduled")]
    assert token(emu, "other-secret", client_id="66666666-0000-0000-0000-000000000001")


def test_constructor_seed_applies_before_start() -> None:
    """Emulator(seed=...) seeds without starting the server, and the default scenario has the demo datasets."""
    emu = Emulator(seed=DEFAULT_SCENARIO)
    assert not emu.running
    assert {d.name for d in emu.state.workspace("Sales Analytics").datasets.values()} == {"Sales", "Finance",
                                                                                          "Inventory Model"}


@pytest.mark.parametrize(
    ("scenario", "fragment"),
    [
        pytest.param({"workspace": []}, "workspace", id="unknown-top-key"),
        pytest.param({"workspaces": [{"datasets": []}]}, "needs", id="missing-name"),
        pytest.param({"workspaces": [{"name": "W", "datasets": [{"name": "D", "outcome": "Exploded"}]}]},
                     "Exploded", id="bad-outcome"),
        pytest.param("/nonexistent/scenario.yaml", "does not exist", id="missing-file"),
    ],
)
def test_bad_scenarios_say_what_is_wrong(scenario: Any, fragment: str) -> None:
    """Unknown keys, missing names, bad outcomes and missing files raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=fragment):
        Emulator(seed=scenario)


def test_reset_restores_the_default_app_and_clears_the_rest(emu: Emulator, api: Any) -> None:
    """reset() drops workspaces, extra apps, faults and the log but keeps the default credentials working."""
    emu.add_workspace("Temp")
    emu.add_app("88888888-0000-0000-0000-000000000001", secret="x")
    emu.inject("groups", "throttle", count=5)
    emu.token_lifetime = 10
    emu.reset()
    assert emu.count() == 0
    assert emu.token_lifetime == 3599
    result = msal_app(emu, "x", client_id="88888888-0000-0000-0000-000000000001").acquire_token_for_client([emu.scope])
    assert result["error_codes"] == [700016]
    answer = api.get(f"{emu.api_root}/groups")
    assert (answer.status_code, answer.json()["value"]) == (200, [])


def test_seed_registers_certificate_and_federated_apps(emu: Emulator, tmp_path: Path) -> None:
    """Scenario apps may carry a certificate file and federated credentials; real MSAL then gets tokens."""
    from pbi_taskflow.emulator import make_client_certificate

    cert = make_client_certificate()
    (tmp_path / "app.pem").write_text(cert.certificate_pem, encoding="ascii")
    emu.seed({"apps": [
        {"client_id": "66666666-0000-0000-0000-000000000002", "certificate_path": str(tmp_path / "app.pem")},
        {"client_id": "66666666-0000-0000-0000-000000000003",
         "federated": [{"issuer": "https://idp.example", "subject": "system:serviceaccount:etl:airflow"}]},
    ]})
    assert token(emu, {"private_key": cert.private_key_pem, "thumbprint": cert.thumbprint},
                 client_id="66666666-0000-0000-0000-000000000002")
    assertion = emu.issue_federated_token(subject="system:serviceaccount:etl:airflow", issuer="https://idp.example")
    assert token(emu, {"client_assertion": lambda: assertion}, client_id="66666666-0000-0000-0000-000000000003")
