"""The package's layers import only what their docstrings allow (read from the source, every import statement).

Layers, bottom to top: ``errors``; ``client`` (Power BI); ``observability``; ``engine`` (the refresh rules);
``alerts`` and ``airflow`` (everything that talks to Airflow); ``cli`` and ``testing``. The emulator stands
alone. An import under ``if TYPE_CHECKING:`` is for the type checker only and is not counted.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import pbi_taskflow

PACKAGE = Path(pbi_taskflow.__file__).parent
ALL = frozenset({"errors", "client", "observability", "engine", "alerts", "airflow", "cli", "testing", "emulator"})


@dataclass(frozen=True)
class Rule:
    """What a layer may import at module level (``top``), inside functions as well (``lazy``), and whether Airflow."""

    top: frozenset[str]
    lazy: frozenset[str] = frozenset()
    airflow: str = "never"  # "never", "lazy" (inside functions only) or "anywhere"


RULES: dict[str, Rule] = {
    "errors": Rule(frozenset()),
    "client": Rule(frozenset({"errors", "client", "observability.redact"})),
    "observability": Rule(frozenset({"errors", "client", "observability"}), frozenset({"airflow.compat", "alerts"}),
                          airflow="lazy"),
    "engine": Rule(frozenset({"errors", "client", "observability", "engine"})),
    "alerts": Rule(frozenset({"errors", "client", "observability", "alerts"}), frozenset({"airflow.compat"}),
                   airflow="anywhere"),
    "airflow": Rule(ALL - {"cli", "testing", "emulator"}, airflow="anywhere"),
    "cli": Rule(ALL, airflow="anywhere"),
    "testing": Rule(ALL, airflow="anywhere"),
    "emulator": Rule(frozenset({"emulator"})),
    # the stable public paths at the root re-export the Airflow layer
    "hook": Rule(frozenset({"airflow"})),
    "operator": Rule(frozenset({"airflow"})),
    "trigger": Rule(frozenset({"airflow"})),
}

#: The modules at the package root: the lazy public API, the exception tree and three stable class paths.
ROOT_MODULES = {"__init__", "errors", "hook", "operator", "trigger"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted
    lazy: bool  # inside a function
    line: int


def _imports(path: Path, base: Path = PACKAGE.parent) -> list[Import]:
    module = ".".join(path.relative_to(base).with_suffix("").parts).removesuffix(".__init__")
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, lazy)
                continue
            if isinstance(child, ast.Import):
                found.extend(Import(module, alias.name, lazy, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}:{child.lineno} uses a relative import"
                found.append(Import(module, child.module or "", lazy, child.lineno))
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def _layer(dotted: str) -> str:
    return dotted.split(".")[1] if dotted.count(".") else "root"


def _allowed(target: str, names: frozenset[str]) -> bool:
    inner = target.split(".", 1)[1]
    return any(inner == name or inner.startswith(name + ".") for name in names)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "cookiecutter" not in p.as_posix())


def test_the_package_root_holds_only_the_public_entry_points() -> None:
    """New code goes into a layer's subpackage, not the root."""
    assert {p.stem for p in PACKAGE.glob("*.py")} == ROOT_MODULES


def test_every_subpackage_says_what_it_owns_and_may_import() -> None:
    """Each layer's ``__init__`` has a docstring naming its import rule."""
    for layer in ("client", "engine", "observability", "airflow", "cli"):
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "may import" in doc, f"pbi_taskflow.{layer} has no import rule in its docstring"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_module_imports_only_what_its_layer_allows(path: Path) -> None:
    """Every import statement of the module, at module level or inside a function, is allowed for its layer."""
    wrong: list[str] = []
    for imp in _imports(path):
        layer = _layer(imp.module) if imp.module != "pbi_taskflow" else "root"
        if layer == "root" and imp.module in ("pbi_taskflow", "pbi_taskflow.errors"):
            layer = "errors"  # the lazy public API imports by name at first use (importlib), never by statement
        rule = RULES[layer if layer != "root" else imp.module.rsplit(".", 1)[-1]]
        where = f"{imp.module}:{imp.line} imports {imp.target}"
        if imp.target == "airflow" or imp.target.startswith("airflow."):
            if rule.airflow == "never" or (rule.airflow == "lazy" and not imp.lazy):
                wrong.append(f"{where}: Airflow is not allowed {'here' if rule.airflow == 'never' else 'at module level'}")
        elif imp.target.startswith("pbi_taskflow."):
            names = rule.top | (rule.lazy if imp.lazy else frozenset())
            if _layer(imp.target) != layer and not _allowed(imp.target, names):
                wrong.append(f"{where}: the {layer} layer may import only {sorted(names)}")
    assert not wrong, "\n".join(wrong)


def test_the_rule_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The reader finds imports inside functions, and skips those under TYPE_CHECKING."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from airflow.sdk import DAG\n"
        "def f():\n    from airflow.sdk import BaseOperator\n    import pbi_taskflow.cli.main\n",
        encoding="utf-8",
    )
    found = {(imp.target, imp.lazy) for imp in _imports(source, tmp_path)}
    assert found == {("typing", False), ("airflow.sdk", True), ("pbi_taskflow.cli.main", True)}

