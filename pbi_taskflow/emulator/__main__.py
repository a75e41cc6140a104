"""``python -m pbi_taskflow.emulator``: same as ``pbi-taskflow emulator``."""

from __future__ import annotations

import sys

from pbi_taskflow.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
