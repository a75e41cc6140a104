"""Benchmarks of pbi_taskflow (``make bench`` / ``python -m bench [name ...]``); not tests."""
