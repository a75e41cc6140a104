"""``python -m pbi_taskflow.cli``: same as ``pbi-taskflow``."""

from __future__ import annotations

import sys

from pbi_taskflow.cli.main import main

sys.exit(main())
