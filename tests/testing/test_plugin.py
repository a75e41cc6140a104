"""The plugin as a user project sees it: loaded by entry point, isolating Airflow when asked or needed, disableable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PROJECT_TEST = '''
import os

def test_isolated(airflow_home, dag_bag, run_dag):
    assert os.environ["AIRFLOW_HOME"] == str(airflow_home)
    assert "pbi-airflow-" in str(airflow_home)
    result = run_dag(dag_bag["ok"])
    assert result.state == "success"
    assert result.xcom("one") == 1
'''

DAG = '''
from airflow.sdk import dag, task

def alert(context):
    pass

@dag(schedule=None, tags=["t"], default_args={"owner": "me", "retries": 1, "on_failure_callback": alert})
def ok():
    @task
    def one():
        return 1
    one()

ok()
'''


NOT_ISOLATED = '''
import os

def test_own_airflow_configuration_is_kept():
    assert os.environ["AIRFLOW_HOME"].endswith("own-home")
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("own.db")
    assert "AIRFLOW__CORE__DAGS_FOLDER" not in os.environ
    from airflow import settings

    assert settings.SQL_ALCHEMY_CONN.endswith("own.db")
'''

LAZY = '''
import os

def test_before_any_airflow_fixture_nothing_moved():
    assert os.environ["AIRFLOW_HOME"].endswith("must-not-be-used")

def test_airflow_fixtures_isolate_on_first_use(airflow_home, dag_bag, run_dag):
    assert os.environ["AIRFLOW_HOME"] == str(airflow_home)
    assert "pbi-airflow-" in str(airflow_home)
    assert run_dag(dag_bag["ok"]).xcom("one") == 1
'''

TOO_LATE = '''
import airflow.settings  # noqa: F401

def test_needs_airflow(airflow_home):
    raise AssertionError("must not run against the user's Airflow")
'''


def _run(tmp_path, *args, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST_ADDOPTS"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "must-not-be-used")
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.mark.slow
@pytest.mark.integration
def test_user_project_gets_isolated_airflow_and_dag_bag(tmp_path):
    """In a fresh project the plugin loads by itself, moves AIRFLOW_HOME away from the user's and loads dags/."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "ok.py").write_text(textwrap.dedent(DAG))
    (tmp_path / "test_project.py").write_text(textwrap.dedent(PROJECT_TEST))
    # With the ini option, a conftest importing Airflow at module level still gets the isolated home.
    (tmp_path / "conftest.py").write_text("import airflow.settings  # noqa: F401\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\npbi_taskflow_isolate = true\n")
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (tmp_path / "must-not-be-used").exists()


def test_project_not_using_the_fixtures_keeps_its_airflow_home_and_database(tmp_path):
    """Installed but unused, the plugin moves neither AIRFLOW_HOME nor the database URL nor the DAG folder."""
    (tmp_path / "test_other.py").write_text(textwrap.dedent(NOT_ISOLATED))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    own = {"AIRFLOW_HOME": str(tmp_path / "own-home"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'own.db'}"}
    proc = _run(tmp_path, extra_env=own)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_fixtures_work_without_configuration(tmp_path):
    """Without the ini option, the first test requesting an Airflow fixture isolates Airflow, earlier ones see nothing moved."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "ok.py").write_text(textwrap.dedent(DAG))
    (tmp_path / "test_lazy.py").write_text(textwrap.dedent(LAZY))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout
    assert not (tmp_path / "must-not-be-used").exists()


def test_fixture_fails_naming_the_ini_option_when_airflow_was_imported_first(tmp_path):
    """Without the ini option and with Airflow already imported, the fixture errors instead of using the user's home."""
    (tmp_path / "test_late.py").write_text(textwrap.dedent(TOO_LATE))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = _run(tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 error" in proc.stdout
    assert "pbi_taskflow_isolate = true" in proc.stdout
    assert "--pbi-taskflow-isolate" in proc.stdout
    assert "must not run" not in proc.stdout


def test_command_line_flag_isolates_before_conftests(tmp_path):
    """--pbi-taskflow-isolate turns isolation on for one run, before a conftest imports Airflow."""
    (tmp_path / "conftest.py").write_text("import airflow.settings  # noqa: F401\n")
    (tmp_path / "test_flag.py").write_text(textwrap.dedent('''
        import os

        from airflow import settings

        def test_isolated():
            assert "pbi-airflow-" in os.environ["AIRFLOW_HOME"]
            assert settings.SQL_ALCHEMY_CONN == f"sqlite:///{os.environ['AIRFLOW_HOME']}/airflow.db"
    '''))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = _run(tmp_path, "--pbi-taskflow-isolate")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (tmp_path / "must-not-be-used").exists()


def test_plugin_can_be_disabled(tmp_path):
    """With -p no:pbi_taskflow the fixtures are gone and AIRFLOW_HOME is left alone."""
    (tmp_path / "test_off.py").write_text(textwrap.dedent('''
        import os

        def test_off(request):
            assert os.environ["AIRFLOW_HOME"].endswith("must-not-be-used")
            assert not request.config.pluginmanager.has_plugin("pbi_taskflow")
    '''))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = _run(tmp_path, "-p", "no:pbi_taskflow")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
