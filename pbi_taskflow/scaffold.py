"""``pbi-taskflow new``: generate a DAG project from the bundled ``cookiecutter-dag`` template.

The template ships inside the wheel (``pbi_taskflow/cookiecutter-dag``) and sits at the repository
root in a source checkout; :func:`template_dir` finds either.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from pbi_taskflow import __version__
from pbi_taskflow.errors import ConfigurationError

__all__ = ["ScaffoldError", "generate", "load_answers", "parse_assignments", "template_dir"]

TEMPLATE_NAME = "cookiecutter-dag"
_TEMP_LOCK = threading.Lock()


class ScaffoldError(ConfigurationError):
    """The project could not be generated (bad answers, unreadable config file, existing folder)."""


def template_dir() -> Path:
    """The bundled template: inside the installed package, else at the root of a source checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / TEMPLATE_NAME, package.parent / TEMPLATE_NAME):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    msg = (
        f"The {TEMPLATE_NAME} template was not found next to {package}; reinstall pbi-taskflow "
        "(the wheel ships it as pbi_taskflow/cookiecutter-dag)."
    )
    raise ScaffoldError(msg)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["dag_id=sales", "owner=bi"]`` -> ``{"dag_id": "sales", "owner": "bi"}``.

    :raises ScaffoldError: for an item without ``=``.
    """
    answers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            msg = f"Invalid answer {item!r}: expected key=value, for example dag_id=sales_refresh"
            raise ScaffoldError(msg)
        answers[key.strip()] = value
    return answers


def load_answers(path: str | os.PathLike[str]) -> dict[str, str]:
    """Answers from a YAML or JSON file.

    Accepted shapes: a flat mapping of answers (``dag_id: sales``), cookiecutter's user config
    (answers under ``default_context``), or a generated project's ``.cookiecutter.json``. Keys
    starting with ``_`` are ignored.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"Cannot read the config file {file}: {exc.strerror or exc}"
        raise ScaffoldError(msg) from exc
    try:
        import yaml

        data = yaml.safe_load(text)
    except ImportError:  # pragma: no cover - pyyaml ships with Airflow
        data = json.loads(text)
    except Exception as exc:
        msg = f"Cannot parse the config file {file} as YAML or JSON: {exc}"
        raise ScaffoldError(msg) from exc
    if isinstance(data, Mapping) and isinstance(data.get("default_context"), Mapping):
        data = data["default_context"]
    if not isinstance(data, Mapping):
        msg = f"The config file {file} must hold a mapping of answers (for example dag_id: sales_refresh)"
        raise ScaffoldError(msg)
    return {str(k): "" if v is None else str(v) for k, v in data.items() if not str(k).startswith("_")}


def _known_variables(template: Path) -> set[str]:
    data = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    return {key for key in data if not key.startswith("_")}


@contextlib.contextmanager
def _private_tempdir() -> Iterator[str]:
    """Point :mod:`tempfile` at a folder of our own for the duration, then delete it; yield the folder.

    Cookiecutter renders each hook into a ``NamedTemporaryFile(delete=False)`` and never removes it;
    without this every generated project would leave its hook scripts in the system temp folder.
    """
    with _TEMP_LOCK:
        scratch = tempfile.mkdtemp(prefix="pbi-taskflow-new-")
        saved, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            yield scratch
        finally:
            tempfile.tempdir = saved
            shutil.rmtree(scratch, ignore_errors=True)


def generate(
    output_dir: str | os.PathLike[str] = ".",
    *,
    answers: Mapping[str, str] | None = None,
    no_input: bool = False,
    overwrite: bool = False,
) -> Path:
    """Generate a project and return its folder.

    :param output_dir: where the project folder is created.
    :param answers: answers to use (with ``no_input`` they replace the prompts; otherwise they become
        the prompts' defaults).
    :param no_input: do not prompt.
    :param overwrite: write into an existing project folder.
    :raises ScaffoldError: for unknown answer names, answers the template rejects, or an existing folder.
    """
    from cookiecutter.exceptions import CookiecutterException, FailedHookException, OutputDirExistsException
    from cookiecutter.main import cookiecutter

    template = template_dir()
    context = dict(answers or {})
    unknown = sorted(set(context) - _known_variables(template))
    if unknown:
        msg = f"Unknown answer(s) {unknown}; the template asks for: {', '.join(sorted(_known_variables(template)))}"
        raise ScaffoldError(msg)
    context["_pbi_taskflow_version"] = __version__
    quiet = logging.getLogger("cookiecutter")  # its hook failure log repeats the hook's message with a traceback
    was_level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        with _private_tempdir() as scratch:
            result = cookiecutter(
                str(template),
                no_input=no_input,
                extra_context=context,
                output_dir=str(output_dir),
                overwrite_if_exists=overwrite,
                # cookiecutter's defaults (never the user's ~/.cookiecutterrc), but its replay file goes to the
                # scratch folder: the answers already live in the project's .cookiecutter.json
                default_config={"replay_dir": os.path.join(scratch, "replay")},
                accept_hooks=True,
            )
    except FailedHookException as exc:
        msg = "The answers were rejected (see the list above); nothing was generated."
        raise ScaffoldError(msg) from exc
    except OutputDirExistsException as exc:
        msg = f"{exc}; choose another project_slug or --output-dir, or pass --overwrite"
        raise ScaffoldError(msg) from exc
    except (CookiecutterException, ValueError) as exc:
        raise ScaffoldError(str(exc)) from exc
    finally:
        quiet.setLevel(was_level)
    return Path(result)
