"""Import cost: the emulator package and an unstarted Emulator load no TLS, JWT or HTTP client machinery."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import pbi_taskflow
assert not any(m.startswith("pbi_taskflow.emulator") for m in sys.modules), "pbi_taskflow imports the emulator"
from pbi_taskflow.emulator import Emulator
emu = Emulator(seed={"workspaces": [{"name": "W", "datasets": [{"name": "D"}]}]})
heavy = sorted(m for m in ("cryptography", "jwt", "msal", "requests", "http.server", "ssl") if m in sys.modules)
print(",".join(heavy))
"""


def test_unstarted_emulator_imports_nothing_heavy() -> None:
    """``import pbi_taskflow`` skips the emulator; building an Emulator loads no cryptography, jwt, server or ssl."""
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
