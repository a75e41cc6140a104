"""Self-tests of the cookiecutter-dag template: a covering set of answers renders clean, linted, importable
projects; the hook rejects each class of bad answer; representative projects pass their own tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pbi_taskflow import __version__
from pbi_taskflow.cli.scaffold import ScaffoldError, default_source, generate

GUID_WS = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
GUID_DS = "9b2d7c1a-2e4f-4a6b-8c0d-1e2f3a4b5c6d"
GUID_DF = "5e0c7a3b-1d2f-4e6a-9b8c-7d6e5f4a3b2c"

# Every auth method, alert channel, deferrable value and schedule form appears at least once.
COMBINATIONS = {
    "secret-teams": {"auth_method": "secret", "alert_channel": "teams", "deferrable": "no", "schedule": "@daily",
                     "pbi_taskflow_source": __version__},
    "cert-slack-ids": {"auth_method": "certificate", "alert_channel": "slack", "deferrable": "yes",
                       "schedule": "30 2 * * 1-5", "workspace": GUID_WS, "datasets": f"{GUID_DS}, Stock"},
    "federated-email": {"auth_method": "federated", "alert_channel": "email", "deferrable": "no", "schedule": "None",
                        "alert_target": "bi@example.com, oncall@example.org"},
    "mi-none": {"auth_method": "managed_identity", "alert_channel": "none", "deferrable": "yes",
                "schedule": "@continuous", "pbi_taskflow_source": "git+https://example.com/org/pbi_taskflow.git@v0.1.0"},
    "secret-email-conn": {"auth_method": "secret", "alert_channel": "email", "deferrable": "yes",
                          "schedule": "*/15 * * * *", "conn_id": "pbi_prod", "alert_target": "bi@example.com"},
    "cert-teams-names": {"auth_method": "certificate", "alert_channel": "teams", "deferrable": "no",
                         "schedule": "0 6 1 JAN,JUL *", "datasets": "Sales Model, Stock Levels",
                         "project_name": "Q-Reports 2", "owner": "Ana O'Neil", "alert_target": "ops_teams"},
    # a dataflow -> model chain (upstream="refresh"), one dataflow by name and one by id
    "chain-teams": {"auth_method": "secret", "alert_channel": "teams", "deferrable": "yes", "schedule": "@hourly",
                    "upstream_dataflows": f"Sales ETL, {GUID_DF}"},
}

LEFTOVER = re.compile(r"\{\{|\{%|%\}|\{#|(?<![.\w])cookiecutter\.(?!json)\w+")


def _render(tmp_path: Path, name: str, **answers: str) -> Path:
    return generate(tmp_path / name, answers={"project_name": f"Project {name}", **answers}, no_input=True)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("rendered")
    return {name: _render(base, name, **answers) for name, answers in COMBINATIONS.items()}


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_render_leaves_no_template_syntax(rendered, name):
    """No file of the generated project contains leftover Jinja or cookiecutter variables."""
    project = rendered[name]
    files = [p for p in project.rglob("*") if p.is_file()]
    assert len(files) >= 10
    leftovers = {str(p.relative_to(project)): LEFTOVER.findall(p.read_text()) for p in files}
    assert {k: v for k, v in leftovers.items() if v} == {}


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_render_passes_ruff_with_its_own_config(rendered, name):
    """The generated Python passes ruff under the generated project's configuration."""
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=rendered[name], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_render_imports_and_follows_its_policy(rendered, name, airflow_home):
    """The generated DAG imports in Airflow and passes the policy its own conftest declares."""
    from pbi_taskflow.testing import DagPolicy, assert_dag_integrity

    answers = COMBINATIONS[name]
    project = rendered[name]
    policy = DagPolicy(require_failure_alert=answers["alert_channel"] != "none")
    dags = assert_dag_integrity(project / "dags", policy=policy)
    (dag,) = dags.values()
    assert list(dag.task_dict) == ["extract", "transform", "refresh"]
    assert dag.schedule == (None if answers["schedule"] == "None" else answers["schedule"])
    refresh = dag.get_task("refresh")
    assert refresh.conn_id == answers.get("conn_id", "powerbi_default")
    assert bool(refresh.deferrable) is (answers["deferrable"] == "yes")
    assert refresh.upstream == ("refresh" if answers.get("upstream_dataflows") else "ignore")


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_render_scaffolds_a_chain_only_when_dataflows_are_given(rendered, name):
    """upstream_dataflows scaffolds the chain: the emulator fixture seeds those dataflows and links the datasets to
    them, and the ordering and upstream-failure tests exist. Without it nothing of the chain is generated."""
    answers = COMBINATIONS[name]
    project = rendered[name]
    dataflows = [d.strip() for d in answers.get("upstream_dataflows", "").split(",") if d.strip()]
    generated = "\n".join(p.read_text() for p in sorted(project.rglob("*")) if p.is_file())
    recorded = json.loads((project / ".cookiecutter.json").read_text())
    if not dataflows:
        for word in ("upstream", "dataflow", "Dataflow"):
            assert word not in generated
        assert "upstream_dataflows" not in recorded
        return
    assert recorded["upstream_dataflows"] == answers["upstream_dataflows"]
    conftest = (project / "tests" / "conftest.py").read_text()
    assert f"UPSTREAM_DATAFLOWS = {json.dumps(dataflows)}" in conftest
    assert "emulator.link_dataset(" in conftest
    tests = next((project / "tests").glob("test_*.py")).read_text()
    assert "def test_datasets_refresh_after_the_dataflows_they_read(" in tests
    assert "def test_a_failed_dataflow_skips_the_datasets_that_read_it(" in tests


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_render_config_env_and_pins(rendered, name):
    """The workspace config lists the datasets; .env.example has placeholders only; the package is pinned."""
    answers = COMBINATIONS[name]
    project = rendered[name]
    config = yaml.safe_load((project / "config" / "powerbi.yaml").read_text())
    expected = [d.strip() for d in answers.get("datasets", "Sales, Inventory").split(",")]
    assert [d["name"] for d in config["datasets"]] == expected
    assert config["workspace"] == answers.get("workspace", "Finance")
    env = (project / ".env.example").read_text()
    conn_var = f"AIRFLOW_CONN_{answers.get('conn_id', 'powerbi_default').upper()}="
    assert conn_var in env
    assert answers["auth_method"] in env or answers["auth_method"] == "secret"
    for value in re.findall(r'"(?:password|certificate_password)": "([^"]*)"', env):
        assert value.startswith("<")
        assert value.endswith(">")
    source = answers.get("pbi_taskflow_source", default_source())
    requirement = {__version__: f"pbi-taskflow=={__version__}"}.get(
        source, f"pbi-taskflow @ {source}" if "://" in source else f"pbi-taskflow @ file://{source}")
    assert (project / "requirements.txt").read_text().splitlines()[-1] == requirement
    assert f'dependencies = ["{requirement}", "pyyaml>=6"]' in (project / "pyproject.toml").read_text()
    assert json.loads((project / ".cookiecutter.json").read_text())["pbi_taskflow_source"] == source


def test_default_source_is_what_this_process_has_installed():
    """The default pbi_taskflow_source is the checkout of an editable install (here) and the generated
    requirements.txt installs from it, so `pip install -r requirements-test.txt` works without a package index."""
    from importlib import metadata

    direct = json.loads(metadata.distribution("pbi-taskflow").read_text("direct_url.json") or "{}")
    checkout = Path(__file__).resolve().parents[2]
    if direct.get("dir_info", {}).get("editable"):
        assert default_source() == str(checkout)
    else:
        assert default_source() in (__version__, direct.get("url", "").removeprefix("file://"))


@pytest.mark.parametrize("name", [n for n, a in sorted(COMBINATIONS.items()) if a["alert_channel"] == "email"])
def test_env_example_smtp_connection_matches_its_port(rendered, name):
    """The SMTP example uses STARTTLS on port 587 (disable_ssl true), as SMTP over SSL is the default and needs 465."""
    env = (rendered[name] / ".env.example").read_text()
    [line] = [line for line in env.splitlines() if line.startswith("AIRFLOW_CONN_SMTP_DEFAULT=")]
    conn = json.loads(line.split("=", 1)[1].strip("'"))
    assert conn["port"] == 465 or conn["extra"].get("disable_ssl") is True

BAD_ANSWERS = {
    "dag id not an identifier": ({"dag_id": "sales-refresh"}, "dag_id 'sales-refresh': must be a Python identifier"),
    "dag id a keyword": ({"dag_id": "class"}, "dag_id 'class': is a Python keyword"),
    "dag id shadowing a name of the DAG file": ({"dag_id": "task"}, "the DAG file already uses this name"),
    "cron with 4 fields": ({"schedule": "0 6 * *"}, "has 4 fields; a cron expression has 5"),
    "cron out of range": ({"schedule": "0 24 * * *"}, "hour value '24' is not between 0 and 23"),
    "cron bad step": ({"schedule": "*/0 * * * *"}, "minute step '0' must be a positive number"),
    "unknown preset": ({"schedule": "@fortnightly"}, "unknown preset '@fortnightly'"),
    "malformed workspace GUID": ({"workspace": "3f2504e0-4f89-41d3-9a0c-0305e82c33"},
                                 "looks like an id but is not a GUID: its groups have 8-4-4-4-10 hex digits"),
    "workspace GUID with a non-hex letter": ({"workspace": "3f1c0000-0000-0000-0000-00000000000Z"},
                                             "has the shape of a GUID but 'Z' is not a hex digit"),
    "braced workspace GUID": ({"workspace": "{3f1c0000-0000-0000-0000-000000000001}"},
                              "a GUID in braces; write it without them: 3f1c0000-0000-0000-0000-000000000001"),
    "33 hex digits": ({"workspace": "3f1c0000000000000000000000000000a"},
                      "33 hex digits without dashes; a GUID has 32"),
    "32 hex digits without dashes": ({"datasets": "3f1c0000000000000000000000000001"},
                                     "a GUID without dashes; write it as 3f1c0000-0000-0000-0000-000000000001"),
    "malformed dataset GUID": ({"datasets": "Sales, 9b2d7c1a-2e4f-4a6b-8c0d"}, "dataset '9b2d7c1a-2e4f-4a6b-8c0d'"),
    "source path that does not exist": ({"pbi_taskflow_source": "/nowhere/pbi_taskflow-0.1.0-py3-none-any.whl"},
                                        "no wheel, sdist or folder at this path"),
    "source neither version, path nor URL": ({"pbi_taskflow_source": "latest please"},
                                             "expected a version (0.1.0), the absolute path"),
    "empty dataset entry": ({"datasets": "Sales,,Stock"}, "an entry is empty"),
    "empty upstream dataflow entry": ({"upstream_dataflows": "Sales ETL, ,Raw"},
                                      "upstream_dataflows 'Sales ETL, ,Raw': an entry is empty"),
    "duplicate upstream dataflow": ({"upstream_dataflows": "Sales ETL, sales etl"}, "listed more than once"),
    "malformed dataflow GUID": ({"upstream_dataflows": "5e0c7a3b-1d2f-4e6a-9b8c"}, "dataflow '5e0c7a3b-1d2f-4e6a-9b8c'"),
    "duplicate dataset": ({"datasets": "Sales, sales"}, "listed more than once"),
    "malformed email": ({"alert_channel": "email", "alert_target": "bi@example"}, "not a valid email address"),
    "webhook URL instead of conn id": ({"alert_channel": "teams", "alert_target": "https://example.com/hook"},
                                       "never the URL itself"),
    "conn id with dashes": ({"conn_id": "power-bi"}, "conn_id 'power-bi'"),
    "quote in project name": ({"project_name": 'Sales "Q1"', "project_slug": "sales"},
                              "must not contain double quotes"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_bad_answers_are_rejected(tmp_path, case):
    """Each class of bad answer is rejected with a message naming it, before cookiecutter runs; nothing is generated."""
    answers, expected = BAD_ANSWERS[case]
    with pytest.raises(ScaffoldError) as info:
        generate(tmp_path, answers=answers, no_input=True)
    assert any(expected in problem for problem in info.value.problems), info.value.problems
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["Sales-2024", "2024-2025", "Finance {EU}", "cafe-babe Reports", "deadbeef"])
def test_names_that_merely_contain_hex_are_not_mistaken_for_ids(tmp_path, name):
    """Ordinary workspace names (digits and dashes, a few hex-looking words) are not GUID typos."""
    from pbi_taskflow.cli.scaffold import _hook, template_dir

    assert _hook(template_dir()).guid_problem(name) is None


def test_all_problems_at_once(tmp_path):
    """Several bad answers are reported together, so one rerun fixes them all."""
    with pytest.raises(ScaffoldError) as info:
        generate(tmp_path, answers={"dag_id": "1x", "schedule": "bad", "alert_channel": "email",
                                    "alert_target": "nope"}, no_input=True)
    assert len(info.value.problems) == 3
    assert str(info.value).count("\n  - ") == 3


def test_answer_problems_come_before_an_existing_folder(tmp_path):
    """An existing project folder does not hide the answers' problems: they are listed first, then the folder."""
    (tmp_path / "sales_reporting").mkdir()
    with pytest.raises(ScaffoldError) as info:
        generate(tmp_path, answers={"dag_id": "class", "workspace": "{3f1c0000-0000-0000-0000-000000000001}"},
                 no_input=True)
    message = str(info.value)
    assert [p.split(" ")[0] for p in info.value.problems] == ["dag_id", "workspace"]
    assert message.index("dag_id 'class'") < message.index("workspace") < message.index("already exists")
    with pytest.raises(ScaffoldError, match=r"already exists.*--overwrite"):
        generate(tmp_path, no_input=True)


def test_the_hook_itself_rejects_bad_answers_for_plain_cookiecutter(tmp_path, capfd):
    """Run by cookiecutter or cruft directly (no pbi-taskflow checks first), the template's hook lists every problem."""
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    from pbi_taskflow.cli.scaffold import template_dir

    with pytest.raises(FailedHookException):
        cookiecutter(str(template_dir()), no_input=True, output_dir=str(tmp_path),
                     extra_context={"dag_id": "class", "schedule": "0 24 * * *"},
                     default_config={"replay_dir": str(tmp_path / "replay")})
    err = capfd.readouterr().err
    assert "dag_id 'class': is a Python keyword" in err
    assert "hour value '24' is not between 0 and 23" in err
    assert not (tmp_path / "sales_reporting").exists()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("name", ["secret-teams", "cert-slack-ids", "chain-teams"])
def test_generated_project_tests_pass(rendered, name):
    """The generated project's own test suite passes offline, first try, in a fresh pytest process (a chain's
    includes its ordering and upstream-failure tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=rendered[name],
                          env=env, capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert ("6 passed" if COMBINATIONS[name].get("upstream_dataflows") else "4 passed") in proc.stdout
