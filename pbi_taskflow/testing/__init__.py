"""Test kit for DAGs that refresh Power BI: the pytest plugin and its helpers."""

from __future__ import annotations
