"""``pbi-taskflow emulator`` as a new user runs it: a subprocess whose printed facts drive fresh MSAL + requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import msal
import pytest
import requests

from pbi_taskflow.emulator.cli import main

pytestmark = pytest.mark.integration


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    return subprocess.Popen([sys.executable, "-m", "pbi_taskflow.emulator", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    process = _spawn("--json", "--time-scale", "10")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_json_facts_drive_a_fresh_msal_and_requests_client(served: tuple[subprocess.Popen[str], dict[str, Any]],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The first line of ``--json`` is enough to get a token and refresh the seeded "Sales" dataset to Completed."""
    process, facts = served
    assert (facts["msal"]["authority"], facts["msal"]["client_id"]) == (facts["authority"], facts["client_id"])
    assert {"api_url", "authority", "authority_host", "tenant_id", "client_id", "client_secret", "scope",
            "ca_bundle", "airflow_conn"} <= set(facts)
    conn = json.loads(facts["airflow_conn"])
    assert (conn["conn_type"], conn["login"], conn["extra"]["tenant_id"]) == ("pbi_taskflow", facts["client_id"],
                                                                              facts["tenant_id"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", facts["ca_bundle"])
    app = msal.ConfidentialClientApplication(**facts["msal"])
    result = app.acquire_token_for_client([facts["scope"]])
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {result['access_token']}"
    group = session.get(f"{facts['api_url']}/groups", params={"$filter": "name eq 'Sales Analytics'"}).json()
    ws = group["value"][0]["id"]
    datasets = {d["name"]: d["id"] for d in session.get(f"{facts['api_url']}/groups/{ws}/datasets").json()["value"]}
    assert {"Sales", "Finance", "Inventory Model"} <= set(datasets)
    base = f"{facts['api_url']}/groups/{ws}/datasets/{datasets['Sales']}/refreshes"
    request_id = session.post(base, json={"notifyOption": "NoNotification"}).headers["RequestId"]
    status = "Unknown"
    for _ in range(100):  # bounded poll: the seeded refresh lasts 5 emulated seconds (0.5 s at x10)
        entry = next(e for e in session.get(base).json()["value"] if e["requestId"] == request_id)
        status = entry["status"]
        if status != "Unknown":
            break
        time.sleep(0.1)
    assert status == "Completed"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


def test_sigterm_stops_the_banner_mode(tmp_path: Any) -> None:
    """Without --json a human banner with the URL, ids and CA hint is printed; SIGTERM stops it with code 0."""
    process = _spawn()
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(12)]
        text = "".join(lines)
        assert "https://127.0.0.1:" in text
        assert "REQUESTS_CA_BUNDLE" in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_seed_file_replaces_the_default_scenario(tmp_path: Any) -> None:
    """--seed FILE serves that scenario's workspaces instead of the default one; fixed credentials are used."""
    seed = tmp_path / "seed.yaml"
    seed.write_text("workspaces:\n  - name: Ops\n    datasets:\n      - {name: Tickets, duration: 2}\n",
                    encoding="utf-8")
    process = _spawn("--json", "--seed", str(seed), "--client-id", "12345678-0000-0000-0000-000000000001",
                     "--client-secret", "fixed-secret")
    try:
        assert process.stdout is not None
        facts = json.loads(process.stdout.readline())
        assert (facts["client_id"], facts["client_secret"]) == ("12345678-0000-0000-0000-000000000001", "fixed-secret")
        session = requests.Session()
        session.verify = facts["ca_bundle"]
        session.trust_env = False
        form = {"grant_type": "client_credentials", "client_id": facts["client_id"],
                "client_secret": facts["client_secret"], "scope": facts["scope"]}
        bearer = session.post(f"{facts['authority']}/oauth2/v2.0/token", data=form).json()["access_token"]
        groups = session.get(f"{facts['api_url']}/groups", headers={"Authorization": f"Bearer {bearer}"}).json()
        assert [g["name"] for g in groups["value"]] == ["Ops"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_bad_seed_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    """A missing seed file exits with 2 and names the file."""
    assert main(["--seed", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_non_loopback_host_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--host other than 127.0.0.1/localhost exits with 2 and says the emulator binds loopback only."""
    assert main(["--host", "0.0.0.0"]) == 2
    assert "127.0.0.1 only" in capsys.readouterr().err
