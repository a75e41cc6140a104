"""Where a task records its refreshes while they run, so a retry reattaches instead of starting them again.

Airflow 3.3's ``task_state_store`` is scoped to the task instance (DAG, run, task, map index) and,
unlike XComs, survives into the next try. The record is written right after each refresh starts. A
try that succeeds removes it; a try that fails replaces it with the refreshes that completed, so the
retry refreshes only the other datasets; an interrupted try (worker crash, lost trigger) leaves the
whole run behind for the retry to resume. Every record carries the task instance's ``max_tries``, so a
try after a clear starts afresh instead of resuming what an interrupted try left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pbi_taskflow.engine.run import RefreshRun

RETENTION = dt.timedelta(days=2)


class Ledger:
    """Load, save and clear the task's :class:`RefreshRun` in ``context["task_state_store"]``.

    :param context: the Airflow task context.
    :param key: the store key.
    :param logger: the task logger.
    :param max_tries: the task instance's ``max_tries``, stamped on every record written: Airflow raises it
        when someone clears the task, so a later try tells a clear (start afresh) from a retry (resume).
    """

    def __init__(self, context: Mapping[str, Any], key: str, logger: Any, *, max_tries: int | None = None) -> None:
        try:
            self.store = context.get("task_state_store")
        except Exception:  # noqa: BLE001 - a context without the store (older Airflow)
            self.store = None
        self.key = key
        self.logger = logger
        self.max_tries = max_tries
        if self.store is None:
            logger.warning(
                "This Airflow has no task_state_store: a retry after a worker crash cannot reattach to the "
                "refreshes this task started."
            )

    def load(self) -> RefreshRun | None:
        if self.store is None:
            return None
        try:
            data = self.store.get(self.key)
        except Exception as exc:  # noqa: BLE001 - never fail a task because the record is unreadable
            self.logger.warning("Could not read the refreshes recorded by an earlier try: %s", exc)
            return None
        if not isinstance(data, Mapping):
            return None
        return RefreshRun.from_dict(data)

    def save(self, run: RefreshRun, *, before_send: bool = False) -> None:
        """Record ``run``; a failure is logged, except ``before_send``, where it raises.

        :param before_send: the record of a refresh request about to be sent. Without it a retry could not
            tell that this try sent the request, and would send another: the request is not sent.
        :raises RefreshNotRecordedError: ``before_send`` and the store refused the record.
        """
        if self.store is None:
            return
        if self.max_tries is not None:
            run.max_tries = self.max_tries
        try:
            self.store.set(self.key, run.to_dict(), retention=RETENTION)
        except Exception as exc:
            if before_send:
                from pbi_taskflow.errors import RefreshNotRecordedError

                msg = (
                    f"Could not record the next refresh request before sending it ({type(exc).__name__}: {exc}), "
                    "so it was not sent: a retry that did not know about it would start a second refresh. Airflow "
                    "may have ended this try already (a missed heartbeat); the retry refreshes what did not start."
                )
                raise RefreshNotRecordedError(msg) from exc
            # the refreshes matter more than their record
            self.logger.warning("Could not record the running refreshes for a retry: %s", exc)

    def clear(self) -> None:
        if self.store is None:
            return
        try:
            self.store.delete(self.key)
        except Exception as exc:  # noqa: BLE001
            self.logger.warning("Could not clear the refresh record: %s", exc)
