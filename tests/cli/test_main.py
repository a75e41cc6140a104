"""Top-level dispatch of `pbi-taskflow`: help, no command, and the emulator pass-through."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pbi_taskflow.cli.main import main


def test_no_command_prints_help_and_exits_2(capsys):
    """Without a command the help is printed and the exit code is 2."""
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_emulator_options_are_passed_to_the_emulator(capsys):
    """`pbi-taskflow emulator --help` shows the emulator's own options."""
    with pytest.raises(SystemExit) as info:
        main(["emulator", "--help"])
    assert info.value.code == 0
    assert "--time-scale" in capsys.readouterr().out


def test_startup_does_not_import_heavy_modules():
    """Parsing the command line imports neither Airflow, cookiecutter, msal, requests nor rich."""
    code = (
        "import sys; from pbi_taskflow.cli.main import build_parser; build_parser().parse_args(['doctor']); "
        "print(sorted(m for m in ('airflow', 'cookiecutter', 'msal', 'requests', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"
