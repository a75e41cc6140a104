"""The ``pbi_taskflow`` pytest plugin (registered through the ``pytest11`` entry point).

Disable it with ``-p no:pbi_taskflow``.
"""

from __future__ import annotations
