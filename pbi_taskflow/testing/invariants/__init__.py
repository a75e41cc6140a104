"""The refresh task's promises, checked against what the emulator saw and what the task reported.

Independent of how the task ran (``dag.test()``, a Celery worker, a triggerer): give :func:`check` the
emulator (its request log, refresh and transaction state) and a :class:`TaskObservation` (the task's result
records, final state, log text and XComs), and it returns the broken promises as :class:`Violation` values.
An *item* is a selected dataset or dataflow (with ``upstream='refresh'``, also each dataflow the selection reads);
a dataflow's refreshes are its transactions.

- **I1** at most one refresh started by the task per item per logical run (a clear starts a new one); a later
  one only after an earlier one ended without completing (a retry of a failure). (:mod:`.refreshes`)
- **I2** no cancel of a refresh the task did not start, and none except on a person's kill
  (``cancel_on_kill``) or the task's ``timeout`` (``cancel_on_timeout``); at the timeout, never one of a
  refresh that had ended (the task reads the status once more first). (:mod:`.refreshes`)
- **I3** every item has exactly one result record, of its kind, whose status is what the emulator says
  happened; ``Skipped`` only for a documented reason; a failure without a refresh only when the task
  started none; an unknown outcome (``RefreshOutcomeUnknown``) only while the history the task last read
  did not list the refresh; ``if_running='fail'`` refusing only while another refresh runs. (:mod:`.results`)
- **I4** the task's final state follows ``fail_policy`` (a timeout or a person's kill fails it). (:mod:`.task`)
- **I5** no client secret and no access token the emulator issued in any log line, XCom or alert text.
  (:mod:`.task`)
- **I6** with ``upstream`` set, no refresh request for an item before every item it reads in the task's graph
  ended well in this run, and an item whose upstream failed is reported ``Skipped``. (:mod:`.lineage`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbi_taskflow.testing.invariants.lineage import check_order, task_items
from pbi_taskflow.testing.invariants.model import (
    ALREADY_RUNNING,
    AT_TIMEOUT,
    EXPECTED,
    FAILURES,
    OUTCOME_UNKNOWN,
    TOLERANCE,
    UNDECIDABLE,
    WAIT_TIMEOUT,
    Context,
    TaskObservation,
    Violation,
    records_by_item,
)
from pbi_taskflow.testing.invariants.queries import cancel_requests, format_violations, refreshes_started, texts_of
from pbi_taskflow.testing.invariants.refreshes import check_cancels, check_starts
from pbi_taskflow.testing.invariants.results import check_results
from pbi_taskflow.testing.invariants.task import check_secrets, check_state

if TYPE_CHECKING:
    from pbi_taskflow.emulator import Emulator

__all__ = ["ALREADY_RUNNING", "AT_TIMEOUT", "EXPECTED", "FAILURES", "OUTCOME_UNKNOWN", "TOLERANCE", "UNDECIDABLE",
           "WAIT_TIMEOUT", "TaskObservation", "Violation", "cancel_requests", "check", "format_violations",
           "refreshes_started", "texts_of"]


def check(emulator: Emulator, observation: TaskObservation) -> list[Violation]:
    """The invariants I1-I6 that ``observation`` breaks, given the emulator's request log and state."""
    ctx = Context(emulator, observation, task_items(emulator, observation))
    records = records_by_item(observation.results)
    check_starts(ctx)
    check_cancels(ctx, {key: found[0] for key, found in records.items()})
    if observation.results is not None:
        check_results(ctx, records)
    check_order(ctx, records)
    check_state(ctx)
    check_secrets(ctx)
    return ctx.out
