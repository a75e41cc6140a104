"""Structured status lines for refreshes: one line per state change, throttling, and an end-of-task summary.

Each line is readable by a person and parseable by a machine: after a short prefix it is a list of
``key=value`` pairs in logfmt style (values with spaces or quotes are double-quoted), for example::

    Power BI refresh state: workspace=Finance dataset="Sales Model" refresh_id=5f0c... status=InProgress
    extended_status=- elapsed_s=12.4 attempt=1 throttled_s=-

:func:`parse_fields` turns such a line back into a dict. With a standard library logger the same
fields are also attached to the record as ``record.pbi_refresh`` (for JSON formatters). Only names,
ids, statuses, timings and Power BI's error texts are logged, never credentials, tokens or request
bodies; text from Power BI still passes through :func:`~pbi_taskflow.observability.redact.redact_text` in case it echoes a secret.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pbi_taskflow.client.models import Handle, RefreshResult, RefreshState
from pbi_taskflow.observability.redact import redact_text

__all__ = [
    "display_status", "format_fields", "log_state", "log_throttle", "parse_fields", "summary_table",
]

STATE_PREFIX = "Power BI refresh state:"
THROTTLE_PREFIX = "Power BI throttled:"

#: Power BI's refresh history reports a standard refresh that is still running as ``Unknown``; people read ``Running``.
_DISPLAY = {"Unknown": "Running"}


def display_status(status: Any) -> str:
    """A refresh status as a person should read it: ``Running`` for Power BI's in-progress ``Unknown``.

    Only human-readable output uses it (status lines, summary table, CLI table, demo); records keep Power
    BI's raw value (``RefreshResult.status``, the XCom results, ``record.pbi_refresh``, the refresh log).
    """
    text = str(getattr(status, "value", status))
    return _DISPLAY.get(text, text)


_BARE = re.compile(r"^[^\s\"=\\]+$")
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def _value(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        value = f"{value:.1f}"
    text = str(getattr(value, "value", value))
    if _BARE.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def format_fields(fields: Mapping[str, Any]) -> str:
    """Render ``fields`` as logfmt ``key=value`` pairs (``None`` shows as ``-``)."""
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def parse_fields(line: str) -> dict[str, str | None]:
    """Parse the ``key=value`` pairs of a status line back into a dict (``-`` becomes ``None``)."""
    out: dict[str, str | None] = {}
    for key, raw in _PAIR.findall(line):
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), raw[1:-1])
        out[key] = None if raw == "-" else raw
    return out


def _emit(logger: Any, level: int, prefix: str, fields: dict[str, Any]) -> None:
    fields = {k: redact_text(v) if isinstance(v, str) else v for k, v in fields.items()}
    shown = {**fields, "status": display_status(fields["status"])} if "status" in fields else fields
    message = f"{prefix} {format_fields(shown)}"
    if isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        logger.log(level, "%s", message, extra={"pbi_refresh": fields})
    else:
        logger.log(level, message)


def log_state(
    logger: Any,
    handle: Handle,
    state: RefreshState,
    *,
    elapsed_s: float,
    attempt: int = 1,
    throttled: float | None = None,
) -> None:
    """Log one state change of a refresh as a single structured line.

    Terminal failures log at WARNING, everything else at INFO. The line shows Power BI's in-progress
    ``Unknown`` as ``status=Running`` (:func:`display_status`); ``record.pbi_refresh`` keeps ``Unknown``.

    :param logger: the task's logger (a standard library logger or anything with ``.log(level, msg)``).
    :param handle: the refresh being watched.
    :param state: what Power BI reported.
    :param elapsed_s: seconds since the refresh was requested.
    :param attempt: the poll or task attempt this observation belongs to.
    :param throttled: seconds waited because of a 429 before this observation, if any.
    """
    fields: dict[str, Any] = {
        "workspace": handle.workspace_name,
        "dataset": handle.dataset_name,
        "refresh_id": handle.refresh_id,
        "kind": handle.kind,
        "status": state.status.value,
        "extended_status": state.extended_status,
        "elapsed_s": float(elapsed_s),
        "attempt": attempt,
        "throttled_s": None if throttled is None else float(throttled),
    }
    if state.error_code or state.error_message:
        fields["error_code"] = state.error_code
        fields["error_message"] = state.error_message
    fields["workspace_id"] = handle.workspace_id
    fields["dataset_id"] = handle.dataset_id
    level = logging.WARNING if state.status.is_failure else logging.INFO
    _emit(logger, level, STATE_PREFIX, fields)


def log_throttle(logger: Any, *, endpoint: str, retry_after: float, dataset: str | None = None) -> None:
    """Log a 429 answer and the ``Retry-After`` wait it asked for, as one structured WARNING line.

    :param logger: the task's logger.
    :param endpoint: which call was throttled (``refresh_post``, ``history``, ``token`` ...).
    :param retry_after: the wait Power BI asked for, in seconds.
    :param dataset: the dataset concerned, when known.
    """
    fields = {"endpoint": endpoint, "retry_after_s": float(retry_after), "dataset": dataset}
    _emit(logger, logging.WARNING, THROTTLE_PREFIX, fields)


_COLUMNS = (("WORKSPACE", 24), ("DATASET", 28), ("STATUS", 10), ("DURATION", 8), ("REFRESH ID", 36), ("ERROR", 0))


def _cell(text: str, width: int) -> str:
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width) if width else text


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = round(seconds)
    if total < 60:
        return f"{seconds:.1f}s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _name(result: RefreshResult) -> str:
    name = result.dataset_name or result.dataset_id or "-"
    return f"{name} (dataflow)" if result.kind == "dataflow" else name


def _row(result: RefreshResult) -> list[str]:
    return [
        result.workspace_name or result.workspace_id or "-",
        _name(result),
        display_status(result.status),
        _duration(result.duration_s),
        result.refresh_id or "-",
        result.error_code or ("" if result.status.value == "Completed" else (result.reason or "-")),
    ]


def summary_table(results: Sequence[RefreshResult | Mapping[str, Any]]) -> str:
    """A compact fixed-width table of every dataset of a task, one row each, for the end-of-task log.

    The table has a header row, a rule, one row per dataset and a closing count, then each dataset's page
    in the Power BI portal; the caller adds its own heading (the refresh task logs it under
    ``Power BI refresh summary:``).

    :param results: :class:`~pbi_taskflow.client.models.RefreshResult` records (or their ``to_dict()`` form).
    """
    records = [r if isinstance(r, RefreshResult) else RefreshResult.from_dict(r) for r in results]
    if not records:
        return "(no datasets)"
    columns: tuple[tuple[str, int], ...] = _COLUMNS
    ordered = any(r.depth is not None for r in records)
    if ordered:  # a lineage-ordered refresh: rows by depth, each with its depth
        columns = (("DEPTH", 5), *_COLUMNS)
        records = sorted(records, key=lambda r: -1 if r.depth is None else r.depth)
    lines = [" ".join(_cell(name, width) for name, width in columns).rstrip()]
    lines.append(" ".join(("-" * width if width else "-" * 5) for _, width in columns))
    for record in records:
        row = ([str(record.depth) if record.depth is not None else "-"] if ordered else []) + _row(record)
        cells = zip(row, columns, strict=True)
        lines.append(" ".join(_cell(text, width) for text, (_, width) in cells).rstrip())
    ok = sum(1 for r in records if r.succeeded)
    noun = "item(s)" if any(r.kind == "dataflow" for r in records) else "dataset(s)"
    lines.append(f"{ok} of {len(records)} {noun} succeeded.")
    links = [r for r in records if r.web_url]
    if links:
        lines.append("Open in Power BI:")
        lines.extend(f"  {r.workspace_name or r.workspace_id} / {_name(r)}: {r.web_url}" for r in links)
    return "\n".join(lines)
