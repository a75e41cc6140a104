"""`pbi-taskflow new`: non-interactive generation from options and config files, and clear rejections."""

from __future__ import annotations

import json

import pytest

from pbi_taskflow.cli.main import main


def test_new_from_config_file(tmp_path, capsys):
    """A YAML config file of answers generates the project without prompting."""
    config = tmp_path / "answers.yaml"
    config.write_text("project_name: Ops Metrics\ndag_id: ops_refresh\nworkspace: Operations\ndatasets: KPIs\n"
                      "alert_channel: email\nalert_target: ops@example.com\n")
    assert main(["new", "--no-input", "--config-file", str(config), "--output-dir", str(tmp_path / "out")]) == 0
    project = tmp_path / "out" / "ops_metrics"
    assert (project / "dags" / "ops_refresh.py").is_file()
    assert '"Operations"' in (project / "config" / "powerbi.yaml").read_text()
    answers = json.loads((project / ".cookiecutter.json").read_text())
    assert answers["alert_target"] == "ops@example.com"
    assert f"Created {project}" in capsys.readouterr().out


def test_new_key_value_answers_override_the_config_file(tmp_path):
    """key=value arguments win over the config file; cookiecutter's default_context layout is accepted."""
    config = tmp_path / "cookiecutter.yaml"
    config.write_text("default_context:\n  project_name: Ops\n  dag_id: from_file\n")
    code = main(["new", "--no-input", "--config-file", str(config), "-o", str(tmp_path), "dag_id=from_cli"])
    assert code == 0
    assert (tmp_path / "ops" / "dags" / "from_cli.py").is_file()


def test_new_replays_a_generated_projects_answers(tmp_path):
    """A generated .cookiecutter.json regenerates the same project elsewhere."""
    assert main(["new", "--no-input", "-o", str(tmp_path / "a"), "project_name=Replay Me"]) == 0
    answers = tmp_path / "a" / "replay_me" / ".cookiecutter.json"
    assert main(["new", "--no-input", "--config-file", str(answers), "-o", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "replay_me" / "dags" / "replay_me_refresh.py").is_file()


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["dag_id=9lives"], "dag_id '9lives': must be a Python identifier"),
        (["unknown_key=1"], "Unknown answer(s) ['unknown_key']"),
        (["dag_id"], "expected key=value"),
    ],
)
def test_new_rejects_bad_answers_with_exit_code_2(tmp_path, capfd, answers, expected):
    """Bad answers exit with 2, say what was wrong, and generate nothing."""
    assert main(["new", "--no-input", "-o", str(tmp_path), *answers]) == 2
    err = capfd.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_to_overwrite_an_existing_project(tmp_path, capsys):
    """Generating into an existing project folder fails unless --overwrite."""
    assert main(["new", "--no-input", "-o", str(tmp_path)]) == 0
    assert main(["new", "--no-input", "-o", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["new", "--no-input", "-o", str(tmp_path), "--overwrite"]) == 0


def test_help_lists_every_command(capsys):
    """`pbi-taskflow --help` lists new, emulator, doctor, refresh and demo."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("new", "emulator", "doctor", "refresh", "demo"):
        assert command in out


@pytest.mark.parametrize("answers", [["project_name=No Litter"], ["dag_id=9lives"]])
def test_new_leaves_no_hook_scripts_in_the_temp_dir(tmp_path, monkeypatch, capfd, answers):
    """Generating (or rejecting answers) leaves none of the template hooks' rendered scripts in the temp dir."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    main(["new", "--no-input", "-o", str(tmp_path / "out"), *answers])
    capfd.readouterr()
    assert list(scratch.iterdir()) == []


def test_new_writes_nothing_to_cookiecutters_replay_dir_in_home(tmp_path, monkeypatch):
    """Generating keeps cookiecutter's replay file out of ~/.cookiecutter_replay (the answers are in the project)."""
    import cookiecutter.config

    home_replay = tmp_path / "home-replay"
    monkeypatch.setitem(cookiecutter.config.DEFAULT_CONFIG, "replay_dir", str(home_replay))
    assert main(["new", "--no-input", "-o", str(tmp_path / "out"), "project_name=No Replay"]) == 0
    assert not home_replay.exists() or list(home_replay.iterdir()) == []
    assert (tmp_path / "out" / "no_replay" / ".cookiecutter.json").is_file()
