"""`pbi-taskflow new` finds the template inside a built wheel, not only in a source checkout.

This test runs the wheel unpacked on ``PYTHONPATH``, which is quick but not an installation. The real
thing, a clean virtualenv that installs the wheel, generates a project and passes that project's tests
after ``pip install -r requirements-test.txt``, is ``.ci/wheel-check`` (``make wheel-check``), which CI runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import pbi_taskflow
from pbi_taskflow.cli.main import main
from pbi_taskflow.cli.scaffold import template_dir
print("PACKAGE", pbi_taskflow.__file__)
print("TEMPLATE", template_dir())
sys.exit(main(["new", "--no-input", "-o", sys.argv[1], "dag_id=from_wheel"]))
"""


def test_new_runs_the_template_shipped_in_the_wheel(tmp_path):
    """From an unpacked wheel the template is found inside the package and generates a project."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to build the wheel (make install provides it)")
    out = tmp_path / "dist"
    subprocess.run([uv, "build", "--wheel", "-o", str(out), str(ROOT)], check=True, capture_output=True, timeout=180)
    [wheel] = out.glob("pbi_taskflow-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert (site / "pbi_taskflow" / "cookiecutter-dag" / "cookiecutter.json").is_file()
    assert not list((site / "pbi_taskflow" / "cookiecutter-dag").rglob("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "out")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"PACKAGE {site}" in proc.stdout
    assert f"TEMPLATE {site / 'pbi_taskflow' / 'cookiecutter-dag'}" in proc.stdout
    assert (tmp_path / "out" / "sales_reporting" / "dags" / "from_wheel.py").is_file()


def test_ci_installs_the_wheel_into_a_clean_virtualenv_and_runs_a_generated_projects_tests():
    """CI runs .ci/wheel-check, which builds the wheel, installs it into a new venv and runs a generated project."""
    assert "make wheel-check" in (ROOT / ".ci" / "run").read_text().splitlines()
    assert "\nwheel-check: $(STAMP)\n\t.ci/wheel-check\n" in (ROOT / "Makefile").read_text()
    script = (ROOT / ".ci" / "wheel-check").read_text()
    for step in ("build --quiet --wheel", "python3 -m venv", "pbi-taskflow\" new --no-input",
                 "-r requirements-test.txt", "-m pytest"):
        assert step in script, step
