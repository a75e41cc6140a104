"""Remove tool caches that may sit in an installed or checked-out template; the project starts clean."""

from __future__ import annotations

import shutil
from pathlib import Path

for name in ("__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache"):
    for cache in list(Path.cwd().rglob(name)):
        shutil.rmtree(cache, ignore_errors=True)
for compiled in list(Path.cwd().rglob("*.py[co]")):
    compiled.unlink(missing_ok=True)
