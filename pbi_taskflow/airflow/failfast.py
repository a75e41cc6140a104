"""Errors that another try cannot fix fail the task at once, without Airflow retries.

Airflow fails a task without retrying when it raises ``AirflowFailException``. A bad secret, an
unknown app or tenant, a wrong connection field, a name that resolves to nothing or a selection of
the wrong shape fails the same way on every try, so :func:`fail_fast` turns such an error into an
instance of a class that is both the original class and ``AirflowFailException``: the log still
shows the original type and message, and notifiers still recognise it (``isinstance`` holds).
Transient faults and Power BI refresh failures keep Airflow's normal retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pbi_taskflow.errors import (
    ConfigurationError,
    InvalidSecretError,
    NameResolutionError,
    SecretExpiredError,
    UnknownClientError,
    UnknownTenantError,
    WorkspaceNotAllowedError,
)

#: Error classes no retry can fix (``TypeError``: a selection of the wrong shape or a code bug).
PERMANENT: tuple[type[BaseException], ...] = (
    TypeError,
    ConfigurationError,
    WorkspaceNotAllowedError,
    NameResolutionError,
    InvalidSecretError,
    SecretExpiredError,
    UnknownClientError,
    UnknownTenantError,
)

_classes: dict[type[BaseException], type[BaseException]] = {}


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    """Unpickle a fail-fast error (its class is made at run time, so it pickles through its original class)."""
    exc = _fail_class(cls).__new__(_fail_class(cls))
    exc.args = args
    exc.__dict__.update(state)
    return exc


def _fail_class(cls: type[BaseException]) -> type[BaseException]:
    """The subclass of ``cls`` and ``AirflowFailException`` (one per class, shown under the original name)."""
    made = _classes.get(cls)
    if made is None:
        from pbi_taskflow.airflow.compat import task_exception

        AirflowFailException = task_exception("AirflowFailException")

        def __reduce__(self: BaseException) -> tuple[Any, ...]:
            return (_rebuild, (cls, self.args, dict(self.__dict__)))

        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__reduce__": __reduce__,
                     "__doc__": f"{cls.__name__} that fails the task without Airflow retries."}
        made = type(cls.__name__, (cls, AirflowFailException), namespace)
        _classes[cls] = made
    return made


def fail_fast(exc: BaseException) -> BaseException:
    """``exc`` as an ``AirflowFailException`` when no retry can fix it; otherwise ``exc`` unchanged."""
    from pbi_taskflow.airflow.compat import task_exception

    if isinstance(exc, task_exception("AirflowFailException")) or not isinstance(exc, PERMANENT):
        return exc
    cls = _fail_class(type(exc))
    new = cls.__new__(cls)
    new.args = exc.args
    new.__dict__.update(exc.__dict__)
    new.__cause__, new.__context__ = exc.__cause__, exc.__context__
    new.__suppress_context__ = exc.__suppress_context__
    return new.with_traceback(exc.__traceback__)


@contextlib.contextmanager
def failing_fast() -> Iterator[None]:
    """Re-raise errors no retry can fix (bad secret, bad configuration, unknown name…) through :func:`fail_fast`."""
    try:
        yield
    except Exception as exc:
        final = fail_fast(exc)
        if final is exc:
            raise
        raise final from exc.__cause__


__all__ = ["PERMANENT", "fail_fast", "failing_fast"]
