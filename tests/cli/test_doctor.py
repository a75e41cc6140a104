"""`pbi-taskflow doctor` against the emulator: a healthy connection, broken ones, and config drift."""

from __future__ import annotations

import json

import pytest

from pbi_taskflow.cli.main import main

pytestmark = pytest.mark.integration


def _seed(emulator):
    emulator.add_workspace("Finance")
    emulator.add_workspace("Team", dedicated=False)
    emulator.add_dataset("Finance", "Sales")
    emulator.add_dataset("Team", "Budget")
    emulator.add_history("Budget", status="Completed", ago=3600)


def test_healthy_connection_reports_workspaces_capacity_and_quota(pbi_connection, emulator, capsys):
    """A working connection exits 0 and lists tenant/app, workspaces, capacity types and shared quota."""
    _seed(emulator)
    assert main(["doctor", "--conn-id", pbi_connection]) == 0
    out = capsys.readouterr().out
    assert f"issued by tenant {emulator.tenant_id}" in out
    assert "workspace 'Finance'" in out
    assert "dedicated capacity" in out
    assert "workspace 'Team'" in out
    assert "shared capacity" in out
    assert "'Budget': 7 of 8 daily refreshes left" in out
    assert "No problems found." in out
    assert emulator.client_secret not in out


def test_wrong_secret_fails_with_an_actionable_message(pbi_connection, emulator, monkeypatch, capsys):
    """An invalid client secret exits 1 at the token step and never prints the secret."""
    conn = emulator.airflow_conn()
    conn["password"] = "wrong-secret-value"
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", json.dumps(conn))
    assert main(["doctor", "--conn-id", "broken"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] token:" in out
    assert "wrong-secret-value" not in out


def test_missing_connection_and_missing_tenant(pbi_connection, emulator, monkeypatch, capsys):
    """An undefined connection and a connection without tenant_id each exit 1 naming what to fix."""
    conn = emulator.airflow_conn()
    del conn["extra"]["tenant_id"]
    monkeypatch.setenv("AIRFLOW_CONN_NO_TENANT", json.dumps(conn))
    assert main(["doctor", "--conn-id", "no_tenant"]) == 1
    assert "tenant_id" in capsys.readouterr().out
    assert main(["doctor", "--conn-id", "never_defined"]) == 1
    assert "AIRFLOW_CONN_NEVER_DEFINED" in capsys.readouterr().out


def test_every_connection_problem_is_reported_at_once(pbi_connection, emulator, monkeypatch, capsys):
    """Several bad fields, a plain-http api_root among them, each get their own connection line, not a token line."""
    conn = emulator.airflow_conn()
    conn["login"] = "not-a-guid"
    conn["extra"].update({"timeout": "soon", "api_root": "http://api.powerbi.example.com/v1.0/myorg"})
    monkeypatch.setenv("AIRFLOW_CONN_MANY", json.dumps(conn))
    assert main(["doctor", "--conn-id", "many"]) == 1
    fails = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[FAIL]")]
    assert len(fails) == 3, fails
    assert all(line.startswith("[FAIL] connection 'many':") for line in fails)
    assert "Invalid client id" in fails[0]
    assert "Invalid timeout" in fails[1]
    assert "plain-http Power BI api_root" in fails[2]


def test_config_drift_is_reported(pbi_connection, emulator, tmp_path, capsys):
    """A config naming a missing dataset, and tables on shared capacity, are problems with suggestions."""
    _seed(emulator)
    config = tmp_path / "powerbi.yaml"
    config.write_text("workspace: Finance\ndatasets:\n  - name: Sale\n  - name: Sales\n    tables: [orders]\n")
    assert main(["doctor", "--conn-id", pbi_connection, "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "dataset 'Sale' does not exist in 'Finance' (did you mean 'Sales'?)" in out
    shared = tmp_path / "team.yaml"
    shared.write_text("workspace: Team\ndatasets:\n  - name: Budget\n    tables: [lines]\n")
    assert main(["doctor", "--conn-id", pbi_connection, "--config", str(shared)]) == 1
    assert "table refreshes need a Premium/Fabric capacity" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("workspace", "commit_mode", "code", "expected"),
    [
        ("Team", "transactional", 1, "refresh_options make every refresh an enhanced refresh"),
        ("Finance", "sometimes", 1, "refresh_options: Invalid commit mode 'sometimes'"),
        ("Finance", "transactional", 0, "matches Power BI"),
    ],
)
def test_refresh_options_are_checked_against_the_capacity(pbi_connection, emulator, tmp_path, capsys, workspace,
                                                          commit_mode, code, expected):
    """Invalid refresh_options, and valid ones on shared capacity (they make every refresh enhanced), are problems."""
    _seed(emulator)
    dataset = "Budget" if workspace == "Team" else "Sales"
    config = tmp_path / "powerbi.yaml"
    config.write_text(f"workspace: {workspace}\ndatasets:\n  - name: {dataset}\nrefresh_options:\n"
                      f"  commit_mode: {commit_mode}\n")
    assert main(["doctor", "--conn-id", pbi_connection, "--config", str(config)]) == code
    assert expected in capsys.readouterr().out


def test_matching_config_passes(pbi_connection, emulator, tmp_path, capsys):
    """A config that matches Power BI adds an ok line and keeps exit code 0."""
    _seed(emulator)
    config = tmp_path / "powerbi.yaml"
    config.write_text("workspace: Finance\ndatasets:\n  - name: Sales\n")
    assert main(["doctor", "--conn-id", pbi_connection, "--config", str(config)]) == 0
    assert "powerbi.yaml matches Power BI" in capsys.readouterr().out


def test_uri_form_of_the_connection_works(pbi_connection, emulator, monkeypatch, capsys):
    """The README's URI form (scheme pbi-taskflow, ignored host, URL-encoded values) is read correctly."""
    from urllib.parse import quote, urlencode

    _seed(emulator)
    extra = emulator.airflow_conn()["extra"]
    uri = (f"pbi-taskflow://{quote(emulator.client_id, safe='')}:{quote(emulator.client_secret, safe='')}@powerbi/?"
           + urlencode(extra))
    monkeypatch.setenv("AIRFLOW_CONN_AS_URI", uri)
    assert main(["doctor", "--conn-id", "as_uri"]) == 0
    assert "workspace 'Finance'" in capsys.readouterr().out


def test_config_table_names_are_checked_where_power_bi_lists_them(pbi_connection, emulator, tmp_path, capsys):
    """A misspelt table fails with a suggestion, existing tables pass, and a model without a tables listing
    (Power BI lists push datasets only) is reported as not checked rather than passed or failed."""
    _seed(emulator)
    emulator.add_dataset("Finance", "Stock")
    emulator.set_tables("Sales", {"Orders": ["Orders-2025"], "Customers": None})
    config = tmp_path / "powerbi.yaml"
    config.write_text("workspace: Finance\ndatasets:\n  - name: Sales\n    tables: [Ordres, customers]\n"
                      "  - name: Stock\n    tables: [Levels]\n")
    assert main(["doctor", "--conn-id", pbi_connection, "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] powerbi.yaml: table 'Ordres' does not exist in dataset 'Sales' (did you mean 'Orders'?)" in out
    assert "'customers'" not in out
    assert ("powerbi.yaml: tables of 'Stock' not checked (Levels): Power BI lists the tables of push datasets only"
            in out)
    config.write_text("workspace: Finance\ndatasets:\n  - name: Sales\n    tables: [Orders, customers]\n")
    assert main(["doctor", "--conn-id", pbi_connection, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "[ok]   powerbi.yaml: tables of 'Sales' exist: Orders, customers" in out
    assert "powerbi.yaml matches Power BI" in out


def test_every_finding_starts_in_the_same_column(pbi_connection, emulator, tmp_path, capsys):
    """[warn] lines (and their fixes) line up with [ok], [FAIL] and information lines: one text column for all."""
    _seed(emulator)
    emulator.add_dataset("Team", "Live", refreshable=False)
    for hours in range(1, 8):
        emulator.add_history("Budget", status="Completed", ago=hours * 600)
    config = tmp_path / "powerbi.yaml"
    config.write_text("workspace: Finance\ndatasets:\n  - name: Sale\n")
    assert main(["doctor", "--conn-id", pbi_connection, "--config", str(config)]) == 1
    lines = capsys.readouterr().out.splitlines()[1:-1]  # between the heading and the verdict
    markers = {line[:6] for line in lines}
    assert {"[ok]  ", "[warn]", "[FAIL]", "      "} <= markers
    assert "[warn] 'Team'/'Budget': 0 of 8 daily refreshes left on shared capacity" in lines
    for line in lines:
        assert line[:6] in ("[ok]  ", "[warn]", "[FAIL]", "      "), line
        assert line[6] == " ", line
        assert line[7] != " ", line


def test_plain_http_api_root_on_loopback_fails_at_once(pbi_connection, emulator, monkeypatch, capsys):
    """An http:// emulator address fails on the connection line, at once, saying to use https; no token is asked."""
    import time

    conn = emulator.airflow_conn()
    conn["extra"]["api_root"] = emulator.api_root.replace("https://", "http://")
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN", json.dumps(conn))
    started = time.monotonic()
    assert main(["doctor", "--conn-id", "plain"]) == 1
    assert time.monotonic() - started < 5
    out = capsys.readouterr().out
    assert "[FAIL] connection 'plain': Refusing plain-http Power BI api_root" in out
    assert emulator.api_root in out
    assert "token:" not in out
    assert emulator.count("token") == 0


def test_data_sources_and_gateways_are_checked_per_dataset(pbi_connection, emulator, capsys):
    """Each refreshable dataset's data sources: healthy, no credentials, gateway offline, not bound, and a gateway
    whose status the app may not read (a warning, not a problem)."""
    emulator.add_workspace("Finance")
    for name in ("Sales", "Stock", "Costs", "HR"):
        emulator.add_dataset("Finance", name)
    emulator.add_gateway("HQ")
    emulator.add_gateway("Branch", online=False)
    emulator.add_gateway("Locked", admins=["0b7c1e2a-1111-4222-8333-944455556666"])
    emulator.add_datasource("Sales", server="sql01", database="sales", gateway="HQ", name="Sales DB")
    emulator.add_datasource("Stock", server="sql02", database="stock", gateway="HQ", name="Stock DB", credentials=False)
    emulator.add_datasource("Costs", server="sql03", database="costs", gateway="Branch", name="Costs DB")
    emulator.add_datasource("HR", type="OData", connection_details={"url": "https://hr.example/odata"})
    emulator.add_datasource("HR", server="sql04", gateway="Locked", name="HR DB")
    assert main(["doctor", "--conn-id", pbi_connection]) == 1
    out = capsys.readouterr().out
    assert "[ok]   'Finance'/'Sales': data source 'Sales DB': reachable through gateway" in out
    assert "[FAIL] 'Finance'/'Stock': data source 'Stock DB': no credentials on gateway" in out
    assert "-> enter the data source's credentials" in out
    assert "[FAIL] 'Finance'/'Costs': data source 'Costs DB': gateway" in out
    assert "is offline (DM_GWPipeline_Client_GatewayUnreachable)" in out
    assert "[FAIL] 'Finance'/'HR': data source 'OData https://hr.example/odata': not bound" in out
    assert "[warn] 'Finance'/'HR': data source 'HR DB': bound to gateway" in out
    assert "3 problem(s) found." in out
    assert emulator.count("refresh_post") == 0


def test_a_profile_is_checked_and_its_workspaces_listed(pbi_connection, emulator, monkeypatch, capsys):
    """With profile_id the connection acts as that profile: doctor names it and sees only its workspaces; an id no
    profile of the app has fails before the workspace checks."""
    profile = emulator.add_profile("Contoso")["id"]
    emulator.add_workspace("Contoso Finance", profile="Contoso")
    emulator.add_workspace("Operations")
    conn = emulator.airflow_conn()
    conn["extra"]["profile_id"] = profile
    monkeypatch.setenv("AIRFLOW_CONN_CONTOSO", json.dumps(conn))
    assert main(["doctor", "--conn-id", "contoso"]) == 0
    out = capsys.readouterr().out
    assert f"profile {profile}" in out
    assert f"acting as service principal profile {profile} ('Contoso')" in out
    assert "workspace 'Contoso Finance'" in out
    assert "Operations" not in out
    assert all(r.profile_id is None for r in emulator.requests if r.endpoint in ("token", "profile"))
    conn["extra"]["profile_id"] = "6d0f1a5e-0000-4000-8000-000000000000"
    monkeypatch.setenv("AIRFLOW_CONN_CONTOSO", json.dumps(conn))
    assert main(["doctor", "--conn-id", "contoso"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] profile 6d0f1a5e-0000-4000-8000-000000000000: no service principal profile of this app" in out
    assert "workspaces visible" not in out


def test_doctor_prints_each_workspaces_lineage_graph_by_depth(pbi_connection, emulator, capsys):
    """Datasets reading dataflows (and a composite model reading a model) are printed by depth, upstream first."""
    _seed(emulator)
    emulator.add_dataflow("Finance", "Raw Orders")
    emulator.add_dataflow("Finance", "Sales ETL", upstream=["Raw Orders"])
    emulator.link_dataset("Finance", "Sales", ["Sales ETL"])
    emulator.add_dataset("Finance", "Sales Composite")
    emulator.link_model("Sales Composite", ["Sales"])
    assert main(["doctor", "--conn-id", pbi_connection]) == 0
    out = capsys.readouterr().out
    assert "lineage of 'Finance': 4 item(s) in 4 level(s)" in out
    lines = [line.strip() for line in out.splitlines() if "depth " in line]
    assert [line.split("depth ", 1)[1][:1] for line in lines] == ["0", "1", "2", "3"]
    assert "dataflow 'Raw Orders'" in lines[0]
    assert "dataset 'Sales' (Finance) <- dataflow 'Sales ETL'" in lines[2]
    assert "<- dataset 'Sales'" in lines[3]
    assert "lineage of 'Team': no dataset reads a dataflow or another model" in out
    assert "Power BI semantic model (composite model)" in out  # its data source needs no gateway


def test_doctor_fails_on_a_lineage_cycle(pbi_connection, emulator, capsys):
    _seed(emulator)
    emulator.add_dataflow("Finance", "A")
    emulator.add_dataflow("Finance", "B", upstream=["A"])
    emulator.link_dataflow("Finance", "A", ["B"])
    emulator.link_dataset("Finance", "Sales", ["B"])
    assert main(["doctor", "--conn-id", pbi_connection]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] lineage of 'Finance':" in out
    assert "dataflow 'A'" in out
    assert "dataflow 'B'" in out
