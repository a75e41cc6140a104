"""Run every benchmark module of this package (or only those named): ``python -m bench [core ...]``.

A benchmark module defines ``main() -> None`` that prints its own table.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def _names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def run(argv: list[str]) -> int:
    available = _names()
    wanted = argv or available
    unknown = [n for n in wanted if n not in available]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "main", None)):
            continue
        started = time.perf_counter()
        print(f"== bench.{name} ==")
        module.main()
        print(f"(bench.{name} took {time.perf_counter() - started:.1f} s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
