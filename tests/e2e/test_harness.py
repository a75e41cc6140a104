"""The drill harness says which component failed to start and shows its last log lines, without hanging."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from deployment import Component, StartError, log_says, wait_ready


def _component(tmp_path: Path, name: str, code: str) -> Component:
    return Component(name, [sys.executable, "-c", code], dict(os.environ), tmp_path / f"{name}.log",
                     log_says("ready"))


def test_a_component_that_exits_while_starting_is_named_with_its_last_log_lines(tmp_path: Path) -> None:
    comp = _component(tmp_path, "scheduler", "import sys; print('cannot reach the metadata database'); sys.exit(3)")
    comp.start()
    with pytest.raises(StartError) as err:
        wait_ready([comp], timeout=60)
    assert "scheduler exited with code 3 while starting" in str(err.value)
    assert "cannot reach the metadata database" in str(err.value)


def test_a_component_that_never_gets_ready_is_named_after_the_timeout(tmp_path: Path) -> None:
    comp = _component(tmp_path, "worker-a", "import time; print('connecting to the broker', flush=True); "
                      "time.sleep(60)")
    comp.start()
    try:
        with pytest.raises(StartError) as err:
            wait_ready([comp], timeout=2)
        assert "worker-a was not ready after 2 s" in str(err.value)
        assert "connecting to the broker" in str(err.value)
    finally:
        assert comp.proc is not None
        comp.proc.kill()
        comp.proc.wait(timeout=10)
