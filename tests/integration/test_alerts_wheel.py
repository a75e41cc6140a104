"""The alert templates ship inside the wheel, where the loader finds them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pbi_taskflow.alerts.templating import load_template, templates_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_templates(tmp_path: Path) -> None:
    """A wheel built from the repository holds pbi_taskflow/templates, and each template loads from there."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to build the wheel (make install provides it)")
    out = tmp_path / "dist"
    subprocess.run([uv, "build", "--wheel", "-o", str(out), str(ROOT)], check=True, capture_output=True, timeout=120)
    [wheel] = out.glob("pbi_taskflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    package = tmp_path / "site" / "pbi_taskflow"
    assert templates_dir(package) == package / "templates"
    shipped = sorted(p.name for p in (package / "templates").glob("*.j2"))
    assert shipped == sorted(p.name for p in (ROOT / "templates").glob("*.j2"))
    for name in shipped:
        fmt = "json" if name.endswith(".json.j2") else "html" if name.endswith(".html.j2") else "text"
        load_template(package / "templates" / name, fmt)
