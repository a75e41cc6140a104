"""``pbi-taskflow new``: generate a DAG project from the bundled ``cookiecutter-dag`` template.

The template ships inside the wheel (``pbi_taskflow/cookiecutter-dag``) and sits at the repository
root in a source checkout; :func:`template_dir` finds either.

The answers are gathered here, not by cookiecutter: interactively (:func:`ask`, each answer checked
as it is given, choices by name or number) or from ``key=value`` pairs, a config file and the defaults.
Every answer is checked with the template's own ``pre_gen_project`` hook, all problems are reported
at once, then the output folder; only then does cookiecutter render, without prompting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from pbi_taskflow import __version__
from pbi_taskflow.errors import ConfigurationError

__all__ = [
    "ScaffoldAborted", "ScaffoldError", "ask", "default_source", "generate", "load_answers", "parse_assignments",
    "resolve_answers", "template_dir",
]

TEMPLATE_NAME = "cookiecutter-dag"
_TEMP_LOCK = threading.Lock()


class ScaffoldError(ConfigurationError):
    """The project could not be generated (bad answers, unreadable config file, existing folder).

    :param problems: one message per rejected answer (empty for other problems).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class ScaffoldAborted(ScaffoldError):
    """The interactive questions ended early (end of input); nothing was generated."""


def template_dir() -> Path:
    """The bundled template: inside the installed package, else at the root of a source checkout."""
    package = Path(__file__).resolve().parent.parent  # pbi_taskflow/
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


def _template_json(template: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    return data


def _known_variables(template: Path) -> set[str]:
    return {key for key in _template_json(template) if not key.startswith("_")}


def _hook(template: Path) -> types.ModuleType:
    """The template's ``pre_gen_project`` hook as a module, for its answer checks (``check_answer``, ``validate``)."""
    source = (template / "hooks" / "pre_gen_project.py").read_text(encoding="utf-8")
    source = source.replace("{{ cookiecutter | tojson }}", "{}")
    module = types.ModuleType("pbi_taskflow_scaffold_checks")
    exec(compile(source, str(template / "hooks" / "pre_gen_project.py"), "exec"), module.__dict__)  # noqa: S102
    return module


def default_source() -> str:
    """Where this pbi-taskflow was installed from, as a ``pbi_taskflow_source`` answer.

    A VCS install gives its URL and commit, a wheel or sdist file that still exists gives its path, an
    editable or folder install gives the folder; a package index install (or anything unknown) gives the
    version, for ``pbi-taskflow==<version>``.
    """
    from importlib import metadata
    from urllib.parse import unquote, urlsplit

    try:
        dist = metadata.distribution("pbi-taskflow")
        raw = dist.read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return __version__
    if not raw:
        return __version__
    try:
        info = json.loads(raw)
        url = str(info["url"])
    except (ValueError, KeyError, TypeError):
        return __version__
    vcs = info.get("vcs_info")
    if isinstance(vcs, Mapping) and vcs.get("vcs"):
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"{vcs['vcs']}+{url}" + (f"@{commit}" if commit else "")
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        if os.path.exists(path):
            return path
    return __version__


def _normalized(key: str, value: str) -> str:
    """``pbi_taskflow_source``: a relative or ``~`` path made absolute (from the current folder)."""
    if key != "pbi_taskflow_source":
        return value
    text = value.strip()
    looks_like_path = text.startswith((".", "~")) or os.sep in text or text.endswith((".whl", ".tar.gz", ".zip"))
    if looks_like_path and "://" not in text and not os.path.isabs(text):
        return str(Path(text).expanduser().resolve())
    return text


def _environment(data: dict[str, Any]) -> Any:
    from cookiecutter.environment import StrictEnvironment

    return StrictEnvironment(context={"cookiecutter": data}, keep_trailing_newline=True)


def _render(env: Any, raw: Any, answers: Mapping[str, Any]) -> str:
    from cookiecutter.prompt import render_variable

    return str(render_variable(env, raw, dict(answers)))


def _questions(data: dict[str, Any]) -> list[str]:
    return [key for key in data if not key.startswith("_")]


def _private(data: dict[str, Any]) -> dict[str, Any]:
    private = {key: value for key, value in data.items() if key.startswith("_") and not key.startswith("__")}
    private["_pbi_taskflow_version"] = __version__
    return private


def _default(env: Any, key: str, raw: Any, answers: Mapping[str, Any], given: Mapping[str, str]) -> str:
    if key in given:
        return _normalized(key, given[key])
    if key == "pbi_taskflow_source":
        return default_source()
    if isinstance(raw, list):
        return str(raw[0])
    return _render(env, raw, answers)


def resolve_answers(answers: Mapping[str, str] | None = None, template: Path | None = None) -> dict[str, str]:
    """Every answer without asking: the given ones (paths made absolute), else the template's defaults."""
    template = template or template_dir()
    data = _template_json(template)
    env = _environment(data)
    given = dict(answers or {})
    resolved: dict[str, Any] = _private(data)
    for key in _questions(data):
        resolved[key] = _default(env, key, data[key], resolved, given)
    return {key: value for key, value in resolved.items() if not key.startswith("_")}


def _read(prompt: str, read: Callable[[str], str]) -> str:
    try:
        return read(prompt)
    except EOFError:
        msg = "input ended before every question was answered; nothing was generated"
        raise ScaffoldAborted(msg) from None


_YES_NO = {"y": "yes", "true": "yes", "n": "no", "false": "no"}


def _choose(text: str, options: list[str]) -> str | None:
    """The option named (any case) or numbered (1-based) by ``text`` (``y``/``n`` for yes/no), else None."""
    text = text.strip().lower()
    if text.isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    if sorted(options) == ["no", "yes"]:
        text = _YES_NO.get(text, text)
    return next((option for option in options if option.lower() == text), None)


def ask(
    answers: Mapping[str, str] | None = None,
    *,
    output_dir: str | os.PathLike[str] = ".",
    overwrite: bool = False,
    read: Callable[[str], str] = input,
    err: IO[str] | None = None,
) -> dict[str, str]:
    """Ask every question in turn; return the answers.

    Each answer is checked as it is given (with the template's hook) and only a rejected question is
    asked again. A choice accepts its name (any case) or its number. ``answers`` become the defaults.

    :param answers: defaults that replace the template's.
    :param output_dir: where the project folder will be created (an existing one is refused at once).
    :param overwrite: accept an existing project folder.
    :param read: reads one answer after showing the prompt (``input``).
    :param err: where problems are written (standard error).
    :raises ScaffoldAborted: when the input ends (Ctrl-D) before the last question.
    """
    template = template_dir()
    data = _template_json(template)
    env = _environment(data)
    checks = _hook(template)
    prompts: dict[str, Any] = data.get("__prompts__", {})
    given = dict(answers or {})
    err = err or sys.stderr
    collected: dict[str, Any] = _private(data)
    keys = _questions(data)
    for number, key in enumerate(keys, 1):
        raw = data[key]
        default = _default(env, key, raw, collected, given)
        label = prompts.get(key, key)
        options: list[str] = []
        if isinstance(raw, list):
            options = [str(o) for o in raw]
            described = label if isinstance(label, Mapping) else {"__prompt__": label}
            lines = [f"[{number}/{len(keys)}] {described.get('__prompt__', key)}"]
            lines += [f"    {i} - {o}" + (f": {described[o]}" if o in described else "") for i, o in enumerate(options, 1)]
            prompt = "\n".join(lines) + f"\n  Choose a name or number [{default}]: "
        else:
            prompt = f"[{number}/{len(keys)}] {label} [{default}]: "
        while True:
            text = _read(prompt, read).strip()
            value = _normalized(key, text) if text else default
            if options:
                chosen = _choose(value, options)
                if chosen is None:
                    err.write(f"  {key} {value!r}: expected one of {', '.join(options)} (or 1-{len(options)})\n")
                    err.flush()
                    continue
                value = chosen
            problems = checks.check_answer(key, {**collected, key: value})
            if key == "project_slug" and not problems and not overwrite and (Path(output_dir) / value).exists():
                problems = [(f"project_slug {value!r}: the folder {Path(output_dir) / value} already exists; "
                            "choose another name (or run again with --overwrite)")]
            if not problems:
                break
            for problem in problems:
                err.write(f"  {problem}\n")
            err.flush()
        collected[key] = value
    return {key: value for key, value in collected.items() if not key.startswith("_")}


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
    read: Callable[[str], str] | None = None,
) -> Path:
    """Generate a project and return its folder.

    :param output_dir: where the project folder is created.
    :param answers: answers to use (with ``no_input`` they replace the prompts; otherwise they become
        the prompts' defaults).
    :param no_input: do not prompt.
    :param overwrite: write into an existing project folder.
    :param read: reads one interactive answer (default ``input``); see :func:`ask`.
    :raises ScaffoldError: for unknown answer names, answers the template rejects (all of them, in
        :attr:`ScaffoldError.problems`), then an existing folder.
    :raises ScaffoldAborted: when the interactive input ends early.
    """
    from cookiecutter.exceptions import CookiecutterException, FailedHookException, OutputDirExistsException
    from cookiecutter.main import cookiecutter

    template = template_dir()
    context = dict(answers or {})
    unknown = sorted(set(context) - _known_variables(template))
    if unknown:
        msg = f"Unknown answer(s) {unknown}; the template asks for: {', '.join(sorted(_known_variables(template)))}"
        raise ScaffoldError(msg)
    if no_input:
        resolved = resolve_answers(context, template)
    else:
        resolved = ask(context, output_dir=output_dir, overwrite=overwrite, read=read or input)
    problems = _hook(template).validate(resolved)
    folder = Path(output_dir) / resolved["project_slug"]
    exists = (f'The folder "{folder}" already exists; choose another project_slug or --output-dir, '
              "or pass --overwrite") if folder.exists() and not overwrite else None
    if problems:
        msg = "Cannot generate the project; fix these answers and run again:\n" + "\n".join(
            f"  - {problem}" for problem in problems)
        if exists:
            msg += f"\nThen: {exists[0].lower()}{exists[1:]}."
        raise ScaffoldError(msg, problems)
    if exists:
        raise ScaffoldError(exists)
    extra: dict[str, Any] = {**resolved, "_pbi_taskflow_version": __version__}
    quiet = logging.getLogger("cookiecutter")  # its hook failure log repeats the hook's message with a traceback
    was_level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        with _private_tempdir() as scratch:
            result = cookiecutter(
                str(template),
                no_input=True,
                extra_context=extra,
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
