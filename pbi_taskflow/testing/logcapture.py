"""Capture the log lines of each task while ``dag.test()`` runs it in this process.

Airflow 3 logs through structlog (task SDK loggers) and through the standard library (``logging``
loggers such as ``airflow.task`` or ``pbi_taskflow.*``). Both paths are tapped for the duration of a
run: a structlog processor is inserted just before the renderer, and a handler is attached to the
root logger. Each line is attributed to the task instance that was running when it was emitted.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CapturedLine", "LogCapture"]

# Noise from the in-process Execution API and the task runner's group markers.
_SKIP_LOGGER_PREFIXES = ("airflow.api_fastapi.",)
_SKIP_EVENTS = ("::group::", "::endgroup::")
_HIDDEN_KEYS = frozenset(
    {"event", "level", "log_level", "logger", "logger_name", "timestamp", "loc", "exc_info", "_record",
     "_from_structlog", "positional_args", "stack_info", "exception"}
)


@dataclass(frozen=True)
class CapturedLine:
    """One captured log line.

    :param task_id: the task that was running, or None for lines outside any task.
    :param map_index: its map index (-1 when not mapped).
    :param level: log level name in lower case.
    :param logger: logger name.
    :param message: the formatted message (with ``key=value`` extras and any traceback).
    """

    task_id: str | None
    map_index: int
    level: str
    logger: str
    message: str

    def render(self) -> str:
        """The line as ``level logger: message``."""
        return f"{self.level.upper():<7} {self.logger}: {self.message}"


def _redactor() -> Callable[[str], Any]:
    """Airflow's secret masker (the one task logs use), or identity without it."""
    from pbi_taskflow.observability.redact import masker

    module = masker()
    return module.redact if module is not None else (lambda text: text)  # type: ignore[no-any-return]


def _format_exc(exc_info: Any) -> str:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return "".join(traceback.format_exception(type(exc_info), exc_info, exc_info.__traceback__))
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[0] is not None:
        return "".join(traceback.format_exception(*exc_info))
    return ""


@dataclass
class LogCapture:
    """Collects :class:`CapturedLine` objects; see :meth:`capturing` and :meth:`task`.

    Messages pass through Airflow's secret masker, as they would in a real task log.

    :param listener: called with each line as it is captured (for live progress displays).
    """

    lines: list[CapturedLine] = field(default_factory=list)
    listener: Callable[[CapturedLine], None] | None = None
    _redact: Callable[[str], Any] = field(default_factory=_redactor)
    _current: tuple[str | None, int] = (None, -1)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, level: str, logger: str, message: str) -> None:
        if logger.startswith(_SKIP_LOGGER_PREFIXES) or message.startswith(_SKIP_EVENTS):
            return
        task_id, map_index = self._current
        # Secrets registered with Airflow's masker are hidden here as in real task logs.
        line = CapturedLine(task_id, map_index, level.lower(), logger, str(self._redact(message)))
        with self._lock:
            self.lines.append(line)
        if self.listener is not None:
            self.listener(line)

    # structlog processor: (logger, method name, event dict) -> event dict
    def _processor(self, _logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        with contextlib.suppress(Exception):  # never break the logging of the code under test
            message = str(event_dict.get("event", ""))
            extras = " ".join(f"{k}={v}" for k, v in event_dict.items() if k not in _HIDDEN_KEYS)
            if extras:
                message = f"{message} {extras}"
            exc = _format_exc(event_dict.get("exc_info")) or str(event_dict.get("exception") or "")
            if exc:
                message = f"{message}\n{exc.rstrip()}"
            name = str(event_dict.get("logger") or event_dict.get("logger_name") or "")
            self._add(str(event_dict.get("level") or method), name, message)
        return event_dict

    @contextmanager
    def task(self, task_id: str, map_index: int) -> Iterator[None]:
        """Attribute lines emitted inside the block to one task instance."""
        previous = self._current
        self._current = (task_id, map_index)
        try:
            yield
        finally:
            self._current = previous

    @contextmanager
    def capturing(self) -> Iterator[LogCapture]:
        """Tap structlog and the standard library for the duration of the block."""
        import structlog

        capture = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                with contextlib.suppress(Exception):
                    message = record.getMessage()
                    if record.exc_info:
                        message = f"{message}\n{''.join(traceback.format_exception(*record.exc_info)).rstrip()}"
                    capture._add(record.levelname, record.name, message)

        processors = structlog.get_config()["processors"]
        position = max(len(processors) - 1, 0)  # before the renderer
        processors.insert(position, self._processor)
        handler = _Handler(level=logging.DEBUG)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield self
        finally:
            root.removeHandler(handler)
            try:
                processors.remove(self._processor)
            except ValueError:
                pass

    def text(self, task_id: str | None = None) -> str:
        """Captured lines (of one task, or all) joined with newlines."""
        with self._lock:
            lines = list(self.lines)
        return "\n".join(line.render() for line in lines if task_id is None or line.task_id == task_id)
