"""Every import path users, Airflow and pytest know keeps working after the package was grouped into layers."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import pytest


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("pbi_taskflow", "powerbi_refresh"),
        ("pbi_taskflow", "powerbi_context"),
        ("pbi_taskflow", "PowerBIClient"),
        ("pbi_taskflow", "Refresh"),
        ("pbi_taskflow.errors", "PowerBIError"),
        ("pbi_taskflow.hook", "PowerBIHook"),
        ("pbi_taskflow.operator", "PowerBIRefreshOperator"),
        ("pbi_taskflow.trigger", "PowerBIRefreshTrigger"),  # stored in Airflow's trigger table by deferred tasks
        ("pbi_taskflow.client", "PowerBIClient"),
        ("pbi_taskflow.client", "AsyncPowerBIClient"),
        ("pbi_taskflow.alerts", "TeamsNotifier"),
        ("pbi_taskflow.testing", "run_dag"),
        ("pbi_taskflow.emulator", "Emulator"),
    ],
)
def test_public_path_imports(path: str, name: str) -> None:
    """The documented path gives the object."""
    assert getattr(importlib.import_module(path), name) is not None


def test_stable_paths_are_the_implementations() -> None:
    """The root paths re-export the Airflow layer's classes, not copies."""
    from pbi_taskflow.airflow.hook import PowerBIHook
    from pbi_taskflow.airflow.operator import PowerBIRefreshOperator
    from pbi_taskflow.airflow.trigger import PowerBIRefreshTrigger
    from pbi_taskflow.hook import PowerBIHook as PublicHook
    from pbi_taskflow.operator import PowerBIRefreshOperator as PublicOperator
    from pbi_taskflow.trigger import PowerBIRefreshTrigger as PublicTrigger

    assert (PublicHook, PublicOperator, PublicTrigger) == (PowerBIHook, PowerBIRefreshOperator, PowerBIRefreshTrigger)


@pytest.mark.parametrize(("group", "name"), [("apache_airflow_provider", "provider_info"), ("pytest11", "pbi_taskflow"),
                                             ("console_scripts", "pbi-taskflow")])
def test_entry_point_loads(group: str, name: str) -> None:
    """Airflow's provider discovery, pytest's plugin loading and the console script find their targets."""
    [point] = [p for p in entry_points(group=group) if p.name == name and p.value.startswith("pbi_taskflow")]
    assert point.load() is not None


def test_provider_info_names_importable_classes() -> None:
    """Every class path the provider metadata gives Airflow (hook, decorator, links, notifiers) imports."""
    from pbi_taskflow.airflow.provider_info import get_provider_info

    info = get_provider_info()
    paths = [c["hook-class-name"] for c in info["connection-types"]]
    paths += [d["class-name"] for d in info.get("task-decorators", [])]
    paths += list(info.get("extra-links", []))
    paths += list(info.get("notifications", []))
    assert paths
    for path in paths:
        module, name = path.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name), path
