"""Type-check the public API as DAG authors use it (tests/typing/api.py) with mypy in strict mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@pytest.mark.slow
def test_public_api_type_checks_strictly(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """api.py passes mypy --strict, and each line marked as a type error still is one (warn_unused_ignores)."""
    cache = request.config.cache.mkdir("mypy-typing") if request.config.cache is not None else tmp_path
    command = [
        sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--strict",
        "--warn-unused-ignores", "--no-error-summary", "--cache-dir", str(cache), str(HERE / "api.py"),
    ]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
