"""Jinja2 rendering of alert messages, with escaping suited to each output format.

* ``json`` templates (Teams card, Slack blocks): every ``{{ value }}`` is escaped as the *inside* of a
  JSON string, so user text (error messages, dataset names) can never break the document; write
  ``"text": "Dataset {{ name }}"``. ``{{ value | tojson }}`` inserts a complete JSON value (quotes
  included) for numbers, lists and objects. The output is parsed to check it is valid JSON.
  Filters: ``duration`` (seconds to "2 min 05 s"), ``mrkdwn`` (Slack escaping of ``&``, ``<``, ``>``) and
  ``md`` (Markdown escaping for Teams TextBlock text and FactSet values, so user text cannot form links
  or formatting; apply it after ``truncate``, and never to URL fields such as ``Action.OpenUrl``).
* ``html`` templates (email body): HTML autoescaping.
* ``text`` templates (email plain text): no escaping.

Built-in templates live in ``pbi_taskflow/templates`` of the installed wheel, or in the repository's
top-level ``templates/`` in an editable checkout. A user template is a file path (or a name looked up
in the built-in folder). A broken template raises :class:`AlertTemplateError` naming the template and line.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from pbi_taskflow.errors import ConfigurationError

__all__ = ["AlertTemplateError", "Template", "load_template", "templates_dir"]

FORMATS = ("json", "html", "text")


class AlertTemplateError(ConfigurationError):
    """An alert template could not be loaded or rendered; the message names the template and line."""


def templates_dir(package: Path | None = None) -> Path:
    """The folder holding the built-in templates (wheel: ``pbi_taskflow/templates``; checkout: ``templates/``).

    :param package: the ``pbi_taskflow`` package folder; this installation's when None.
    """
    package = package or Path(__file__).resolve().parent.parent
    candidates = (package / "templates", package.parent / "templates")
    for candidate in candidates:
        if (candidate / "teams_card.json.j2").is_file():
            return candidate
    msg = f"pbi_taskflow's alert templates are missing: looked in {candidates[0]} and {candidates[1]}. Reinstall pbi-taskflow."
    raise AlertTemplateError(msg)


class RawJSON(str):
    """A string that is already a JSON value (the output of the ``tojson`` filter); inserted unescaped."""

    __slots__ = ()


def _tojson(value: Any) -> RawJSON:
    return RawJSON(json.dumps(value, ensure_ascii=False, default=str))


def _json_finalize(value: Any) -> str:
    if isinstance(value, RawJSON):
        return value
    if value is None:
        return ""
    return json.dumps(str(value), ensure_ascii=False)[1:-1]


@functools.cache
def _environment(fmt: str, folder: str) -> Any:
    import jinja2

    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(folder),
        "undefined": jinja2.StrictUndefined,
        "keep_trailing_newline": True,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "autoescape": fmt == "html",
    }
    if fmt == "json":
        options["finalize"] = _json_finalize
    env = jinja2.Environment(**options)
    env.filters["tojson"] = _tojson
    env.filters["duration"] = _duration
    env.filters["mrkdwn"] = _mrkdwn
    env.filters["md"] = _md
    return env


# Characters that start or close Markdown links, emphasis, code, autolinks, headings, quotes and tables;
# "_" inside a word (ModelRefresh_ShortMessage) cannot delimit emphasis and stays as it is.
_MD_INLINE = re.compile(r"[\\`*\[\]()<>#~|!]|(?<![^\W_])_|_(?![^\W_])")
# Line-leading list markers and heading underlines ("- x", "+ x", "1. x", "1) x", "---", "===").
_MD_LIST = re.compile(r"^([ \t]*)([-+=]|\d+(?=[.)](?:[ \t]|$)))", re.MULTILINE)


def _md(value: Any) -> str:
    """Backslash-escape Markdown syntax (CommonMark), so user text in a Teams card renders literally."""
    if value is None:
        return ""
    text = _MD_INLINE.sub(r"\\\g<0>", str(value))
    return _MD_LIST.sub(_escape_list_marker, text)


def _escape_list_marker(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker.isdigit():
        return f"{indent}{marker}\\"
    return f"{indent}\\{marker}"


def _mrkdwn(value: Any) -> str:
    """Escape Slack mrkdwn control characters, so user text cannot ping ``<!channel>`` or forge links."""
    if value is None:
        return ""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _duration(seconds: Any) -> str:
    if seconds is None or seconds == "":
        return "-"
    total = round(float(seconds))
    if total < 60:
        return f"{float(seconds):.1f} s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _resolve(template: str | Path) -> Path:
    path = Path(template).expanduser()
    if path.is_file():
        return path.resolve()
    builtin = templates_dir() / str(template)
    if builtin.is_file():
        return builtin
    msg = (
        f"Alert template {str(template)!r} not found: expected a path to a Jinja2 file or the name of a "
        f"built-in template in {templates_dir()} ({', '.join(sorted(p.name for p in templates_dir().glob('*.j2')))})."
    )
    raise AlertTemplateError(msg)


def _error_line(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Template:
    """A loaded alert template of one format (``json``, ``html`` or ``text``).

    :param template: a file path, or the name of a built-in template.
    :param fmt: the output format, which selects the escaping.
    """

    def __init__(self, template: str | Path, fmt: str) -> None:
        import jinja2

        if fmt not in FORMATS:
            msg = f"Invalid template format {fmt!r}: expected one of {', '.join(FORMATS)}."
            raise AlertTemplateError(msg)
        self.path = _resolve(template)
        self.fmt = fmt
        env = _environment(fmt, str(self.path.parent))
        try:
            self._template = env.get_template(self.path.name)
        except jinja2.TemplateSyntaxError as exc:
            msg = f"Alert template {self.path} line {exc.lineno}: {exc.message}. Fix the template syntax."
            raise AlertTemplateError(msg) from None

    def __repr__(self) -> str:
        return f"Template({str(self.path)!r}, fmt={self.fmt!r})"

    def render(self, facts: dict[str, Any]) -> str:
        """Render with ``facts``; JSON output is checked to parse."""
        try:
            text: str = self._template.render(**facts)
        except Exception as exc:  # noqa: BLE001 - reported with the template name and line
            line = _error_line(sys.exc_info()[2], str(self.path))
            where = f" line {line}" if line else ""
            msg = f"Alert template {self.path}{where} failed to render: {type(exc).__name__}: {exc}"
            raise AlertTemplateError(msg) from None
        if self.fmt == "json":
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                msg = (
                    f"Alert template {self.path} rendered invalid JSON (output line {exc.lineno}, column {exc.colno}): "
                    f"{exc.msg}. Check commas and quotes around loops in the template."
                )
                raise AlertTemplateError(msg) from None
        return text


def load_template(template: str | Path, fmt: str) -> Template:
    """Load an alert template (a path or a built-in name); raises :class:`AlertTemplateError` when broken."""
    return Template(template, fmt)
