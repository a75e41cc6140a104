"""The plugin as a user project sees it: loaded by entry point, isolating Airflow, and disableable."""

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


def _run(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path / "must-not-be-used")
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
    # A conftest importing Airflow at module level still gets the isolated home.
    (tmp_path / "conftest.py").write_text("import airflow.settings  # noqa: F401\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = _run(tmp_path)
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
