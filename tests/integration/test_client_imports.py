"""Import cost discipline: ``import pbi_taskflow`` must not load msal, requests, httpx or the emulator."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

HEAVY = (
    "msal",
    "requests",
    "httpx",
    "jinja2",
    "cookiecutter",
    "cryptography",
    "pbi_taskflow.emulator.server",
    "pbi_taskflow.emulator.entra",
    "pbi_taskflow.emulator.powerbi",
)


@pytest.mark.parametrize(
    "statement",
    [
        "import pbi_taskflow",
        "import pbi_taskflow.client.sync, pbi_taskflow.client.aio, pbi_taskflow.client.settings, pbi_taskflow.client.auth",
        "from pbi_taskflow.client.auth import ClientSecretCredential; ClientSecretCredential('t', 'c', 's')",
    ],
)
def test_import_does_not_load_heavy_modules(statement):
    """After the statement in a fresh interpreter, none of the heavy modules is in sys.modules."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
