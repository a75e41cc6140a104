"""`pbi-taskflow new` asked interactively, answered through its real standard input (a subprocess per test).

Choices take their documented names as well as numbers; a rejected answer is reported at once and only that
question is asked again; end of input (Ctrl-D) ends with a message and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QUESTIONS = ("project_name", "project_slug", "dag_id", "owner", "schedule", "workspace", "datasets",
             "upstream_dataflows", "conn_id", "auth_method", "alert_channel", "alert_target", "deferrable",
             "pbi_taskflow_source")


def _new(tmp_path: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `pbi-taskflow new -o <tmp>/out` with ``lines`` as its standard input (then end of input)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.run([sys.executable, "-m", "pbi_taskflow.cli", "new", "-o", str(tmp_path / "out"), *args],
                          input="".join(f"{line}\n" for line in lines), capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120, check=False)


def _answers(tmp_path: Path, slug: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((tmp_path / "out" / slug / ".cookiecutter.json").read_text())
    return data


def test_choices_accept_their_documented_names(tmp_path):
    """`certificate`, `email` and `yes` are accepted as typed (any case), like the docs list them."""
    lines = ["Ops Metrics", "", "", "", "", "Operations", "KPIs", "", "", "Certificate", "email", "ops@example.com",
             "yes", "0.1.0"]
    proc = _new(tmp_path, lines)
    assert proc.returncode == 0, proc.stderr
    answers = _answers(tmp_path, "ops_metrics")
    assert (answers["auth_method"], answers["alert_channel"], answers["deferrable"]) == ("certificate", "email", "yes")
    assert answers["alert_target"] == "ops@example.com"
    assert proc.stderr == ""
    assert "Choose a name or number [secret]" in proc.stdout
    assert (tmp_path / "out" / "ops_metrics" / "requirements.txt").read_text().splitlines()[-1] == \
        "pbi-taskflow==0.1.0"


def test_choices_accept_numbers_too(tmp_path):
    """The numbers shown next to each choice still work."""
    proc = _new(tmp_path, ["Numbers", *[""] * 8, "4", "2", "", "2", ""])
    assert proc.returncode == 0, proc.stderr
    answers = _answers(tmp_path, "numbers")
    assert (answers["auth_method"], answers["alert_channel"], answers["deferrable"]) == \
        ("managed_identity", "slack", "yes")
    assert answers["alert_target"] == "slack_alerts"


def test_a_rejected_answer_is_reported_at_once_and_only_that_question_is_asked_again(tmp_path):
    """Each bad answer gets its message right away; the next line answers the same question, not the first one."""
    lines = ["Retry Me", "",
             "class", "retry_refresh",                                      # dag_id: a keyword, then fixed
             "",
             "0 25 * * *", "@hourly",                                        # schedule
             "3f1c0000-0000-0000-0000-00000000000Z", "Finance",              # workspace
             "",
             "Sales ETL,,Raw", "Sales ETL",                                  # upstream_dataflows: an empty entry
             "",
             "password", "secret",                                           # auth_method: not a choice
             "", "https://hooks.example.com/x", "teams_alerts",             # alert_target: a URL, then a conn id
             "", ""]
    proc = _new(tmp_path, lines)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    problems = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    assert problems == [
        "dag_id 'class': is a Python keyword, so it cannot name the DAG function; choose another, e.g. class_refresh",
        "schedule: '0 25 * * *': hour value '25' is not between 0 and 23",
        ("workspace '3f1c0000-0000-0000-0000-00000000000Z' looks like an id but is not a GUID: has the shape of a "
        "GUID but 'Z' is not a hex digit"),
        "upstream_dataflows 'Sales ETL,,Raw': an entry is empty (check the commas)",
        "auth_method 'password': expected one of secret, certificate, federated, managed_identity (or 1-4)",
        ("alert_target 'https://hooks.example.com/x': for teams, give the Airflow connection id holding the webhook "
        "URL (letters, digits and '_'), never the URL itself"),
    ]
    for question, times in (("[1/14]", 1), ("[3/14]", 2), ("[5/14]", 2), ("[6/14]", 2), ("[8/14]", 2),
                            ("[10/14]", 2), ("[12/14]", 2)):
        assert proc.stdout.count(question) == times, question
    answers = _answers(tmp_path, "retry_me")
    assert (answers["dag_id"], answers["schedule"], answers["workspace"]) == ("retry_refresh", "@hourly", "Finance")
    assert answers["upstream_dataflows"] == "Sales ETL"


def test_an_existing_project_folder_is_refused_at_the_folder_question(tmp_path):
    """Interactively, an existing folder is reported when its name is given, and another name is asked for."""
    (tmp_path / "out" / "taken").mkdir(parents=True)
    proc = _new(tmp_path, ["Taken", "", "fresh", *[""] * 12])
    assert proc.returncode == 0, proc.stderr
    assert "project_slug 'taken': the folder" in proc.stderr
    assert "already exists" in proc.stderr
    assert (tmp_path / "out" / "fresh" / "dags" / "fresh_refresh.py").is_file()


@pytest.mark.parametrize("answered", [0, 3, 13])
def test_end_of_input_ends_cleanly(tmp_path, answered):
    """Ctrl-D (end of input) at any question ends with a message, exit code 2, no traceback and no files."""
    proc = _new(tmp_path, ["Cut Short", *[""] * (answered - 1)] if answered else [])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "aborted: input ended before every question was answered; nothing was generated" in proc.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_answers_given_on_the_command_line_become_the_defaults(tmp_path):
    """key=value answers are offered as defaults, and still only the rejected question is asked again."""
    proc = _new(tmp_path, [*[""] * 9, "federated", *[""] * 4], "project_name=Given", "workspace=Ops")
    assert proc.returncode == 0, proc.stderr
    assert "[6/14] Power BI workspace (name or id) [Ops]:" in proc.stdout
    answers = _answers(tmp_path, "given")
    assert (answers["workspace"], answers["auth_method"]) == ("Ops", "federated")


def test_the_docs_list_exactly_the_choice_values_the_prompt_accepts():
    """docs/scaffolding.md names, for each choice question, the values the template (and so the prompt) offers."""
    import re

    from pbi_taskflow.cli.scaffold import template_dir

    choices = {k: v for k, v in json.loads((template_dir() / "cookiecutter.json").read_text()).items()
               if isinstance(v, list)}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "scaffolding.md").read_text()
    assert set(choices) == {"auth_method", "alert_channel", "deferrable"}
    for key, values in choices.items():
        [row] = [line for line in doc.splitlines() if line.startswith(f"| `{key}` |")]
        meaning = row.split("|")[3]
        documented = [v for v in re.findall(r"`([a-z_]+)`", meaning) if v in values or v.isidentifier()]
        assert sorted(set(documented) & set(values)) == sorted(values), key
        assert f"`{values[0]}`" in row.split("|")[2], f"{key}: default"
