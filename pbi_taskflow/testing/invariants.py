"""The refresh task's promises, checked against what the emulator saw and what the task reported.

Independent of how the task ran (``dag.test()``, a Celery worker, a triggerer): give :func:`check` the
emulator (its request log and refresh state) and a :class:`TaskObservation` (the task's result records,
final state, log text and XComs), and it returns the broken promises as :class:`Violation` values:

- **I1** at most one refresh started by the task per selected dataset per logical run (a clear starts a
  new one); a later one only after an earlier one ended without completing (a retry of a failure).
- **I2** no DELETE (cancel) of a refresh the task did not start, and none except on a person's kill
  (``cancel_on_kill``) or the task's ``timeout`` (``cancel_on_timeout``); at the timeout, never one of a
  refresh that had ended (the task reads the status once more first).
- **I3** every selected dataset has exactly one result record, whose status is what the emulator says
  happened; ``Skipped`` only for a documented reason; a failure without a refresh only when the task
  started none; an unknown outcome (``RefreshOutcomeUnknown``) only while the history the task last read
  did not list the refresh; ``if_running='fail'`` refusing only while another refresh runs.
- **I4** the task's final state follows ``fail_policy`` (a timeout or a person's kill fails it).
- **I5** no client secret and no access token the emulator issued in any log line, XCom or alert text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbi_taskflow.emulator import Emulator
    from pbi_taskflow.emulator.requestlog import RequestRecord
    from pbi_taskflow.emulator.state import DatasetState, RefreshRun

__all__ = ["TaskObservation", "Violation", "cancel_requests", "check", "format_violations", "refreshes_started",
           "texts_of"]

#: emulator outcome -> the statuses a task may report for it (history shows TimedOut as Failed)
EXPECTED = {"Completed": {"Completed"}, "Failed": {"Failed"}, "Cancelled": {"Cancelled"},
            "TimedOut": {"TimedOut", "Failed"}, "Disabled": {"Disabled"}}
FAILURES = {"Failed", "Cancelled", "TimedOut", "Disabled"}
#: the error code of a result the task's own ``timeout`` ended
WAIT_TIMEOUT = "WaitTimeout"
#: the error code of a result whose refresh the history did not list (a lost answer, or not listed yet at the timeout)
OUTCOME_UNKNOWN = "RefreshOutcomeUnknown"
#: what the message of an outcome-unknown result the task's timeout ended says
AT_TIMEOUT = "the task's timeout"
#: the error code of ``if_running='fail'`` refusing to start
ALREADY_RUNNING = "RefreshAlreadyRunning"
#: What a result's reason says when the refresh followed may be another caller's (see pbi_taskflow.engine.probe).
UNDECIDABLE = "cannot tell whether this request or another caller started it"
#: clock tolerance between the emulator's and the task's view of "when" (seconds)
TOLERANCE = dt.timedelta(milliseconds=50)


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken promise: the invariant (``I1``..``I5``), the dataset (if one) and what happened."""

    invariant: str
    dataset: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.dataset}]" if self.dataset else ""
        return f"{self.invariant}{where}: {self.message}"


@dataclasses.dataclass
class TaskObservation:
    """What one refresh task of one logical run did, as the checker needs it.

    :param datasets: the selected datasets (emulator names or ids).
    :param client_id: the app the task calls Power BI as (its requests and refreshes are told apart by it).
    :param state: the task instance's final state (``success``, ``failed``, ``skipped``...).
    :param results: the task's ``return_value`` XCom (result records), or None when it pushed none.
    :param texts: every log line, XCom value and alert text the task produced (checked for secrets).
    :param fail_policy: the task's ``fail_policy``.
    :param if_running: the task's ``if_running``.
    :param wait: the task's ``wait``.
    :param timeout: the task's ``timeout`` in seconds, or None.
    :param cancel_on_kill: the task's ``cancel_on_kill``.
    :param cancel_on_timeout: the task's ``cancel_on_timeout``.
    :param killed: whether a person killed the task (marked it failed); a shutdown (SIGTERM) is not a kill.
    :param epoch: when the task was last cleared (emulator time), or when the logical run began: refreshes
        started before belong to an earlier clear.
    :param min_interval: the task's ``min_interval`` in seconds, or None.
    """

    datasets: Sequence[str]
    client_id: str
    state: str | None
    results: list[dict[str, Any]] | None
    texts: Sequence[str] = ()
    fail_policy: str = "any"
    if_running: str = "wait"
    wait: bool = True
    timeout: float | None = None
    cancel_on_kill: bool = True
    cancel_on_timeout: bool = True
    killed: bool = False
    epoch: dt.datetime | None = None
    min_interval: float | None = None


def _ours(run: RefreshRun, client_id: str) -> bool:
    return (run.caller or "").lower() == client_id.lower()


def _expected_statuses(run: RefreshRun) -> set[str]:
    return EXPECTED[run.final_status()]


class _Checker:
    def __init__(self, emulator: Emulator, obs: TaskObservation) -> None:
        self.emu = emulator
        self.obs = obs
        self.now = emulator.clock()
        self.out: list[Violation] = []
        self.datasets: list[DatasetState] = [emulator.state.dataset(ref) for ref in obs.datasets]
        self.requests = [r for r in emulator.requests if (r.client_id or "").lower() == obs.client_id.lower()]
        self.epoch = obs.epoch or dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def flag(self, invariant: str, ds: DatasetState | None, message: str) -> None:
        self.out.append(Violation(invariant, ds.name if ds is not None else None, message))

    def runs_ours(self, ds: DatasetState) -> list[RefreshRun]:
        """The refreshes the task started on ``ds`` since the epoch, oldest first."""
        return sorted((r for r in ds.runs if _ours(r, self.obs.client_id) and r.start >= self.epoch - TOLERANCE),
                      key=lambda r: r.start)

    def deadline_floor(self) -> dt.datetime | None:
        """A time the task's ``timeout`` deadline is certainly later than (the timeout counted from it).

        The task starts counting after it resolved the datasets' names and before it reads their history
        to plan: the last name-resolving call before the first history read is a safe lower bound.
        """
        calls = [r for r in self.requests if r.time >= self.epoch - TOLERANCE]
        history = [r.time for r in calls if r.endpoint == "history"]
        first_history = min(history) if history else None
        resolving = [r.time for r in calls if r.endpoint in ("groups", "datasets", "dataset")
                     and (first_history is None or r.time <= first_history)]
        if resolving:
            return max(resolving)
        times = [r.time for r in calls]
        return min(times) if times else None

    # --- I1 -------------------------------------------------------------------------------------------

    def i1(self) -> None:
        for ds in self.datasets:
            runs = self.runs_ours(ds)
            for earlier, later in itertools.pairwise(runs):
                if earlier.final_status() == "Completed" or earlier.end > later.start:
                    self.flag("I1", ds, f"{len(runs)} refreshes started in one logical run: {earlier.request_id} "
                              f"({earlier.final_status()}, {earlier.start:%H:%M:%S.%f}) then {later.request_id} "
                              f"({later.start:%H:%M:%S.%f})")
                    break

    # --- I2 -------------------------------------------------------------------------------------------

    def i2(self, records: Mapping[str, dict[str, Any]]) -> None:
        by_id = {r.request_id.lower(): (ds, r) for ds in self.datasets for r in ds.runs}
        for request in self.requests:
            if request.endpoint != "cancel" or request.time < self.epoch - TOLERANCE:
                continue
            refresh_id = request.path.rstrip("/").rsplit("/", 1)[-1].lower()
            found = by_id.get(refresh_id)
            if found is None:
                self.flag("I2", None, f"DELETE of refresh {refresh_id}, which the emulator never started")
                continue
            ds, run = found
            if not _ours(run, self.obs.client_id):
                self.flag("I2", ds, f"DELETE of refresh {run.request_id} ({run.refresh_type}), which someone else "
                          "started")
                continue
            record = records.get(ds.id.lower())
            timed_out = record is not None and record.get("status") == "TimedOut" and \
                record.get("error_code") == WAIT_TIMEOUT
            allowed = (self.obs.killed and self.obs.cancel_on_kill) or (
                self.obs.timeout is not None and self.obs.cancel_on_timeout and timed_out)
            if not allowed:
                why = "a shutdown or crash" if not self.obs.killed else "a kill with cancel_on_kill=False"
                self.flag("I2", ds, f"DELETE of refresh {run.request_id} without a person's kill or the task's "
                          f"timeout (after {why})")
            # a kill may race a refresh's end unseen; at the timeout the task reads the status first
            if not self.obs.killed and request.time > run.planned_end + TOLERANCE and not run.cancelled_at:
                self.flag("I2", ds, f"DELETE of refresh {run.request_id} after it had ended "
                          f"({run.final_status()} at {run.planned_end:%H:%M:%S.%f})")

    # --- I3 -------------------------------------------------------------------------------------------

    def i3(self, records: Mapping[str, list[dict[str, Any]]]) -> None:
        for ds in self.datasets:
            found = records.get(ds.id.lower(), [])
            if len(found) != 1:
                self.flag("I3", ds, f"{len(found)} result records instead of 1")
                continue
            self.i3_record(ds, found[0])
        selected = {ds.id.lower() for ds in self.datasets}
        for key in records:
            if key not in selected:
                self.flag("I3", None, f"a result record for dataset {key}, which was not selected")

    def i3_record(self, ds: DatasetState, record: Mapping[str, Any]) -> None:
        status = str(record.get("status"))
        refresh_id = str(record.get("refresh_id") or "").lower()
        run = next((r for r in ds.runs if r.request_id.lower() == refresh_id), None) if refresh_id else None
        ours = self.runs_ours(ds)
        reason = str(record.get("reason") or "")
        if status == "Skipped":
            self.i3_skipped(ds, reason, ours)
            return
        # A refresh found in the history after a request's answer was lost may be another caller's that started at
        # the same moment (Power BI cannot tell them apart): reported, it must say so.
        undecidable = UNDECIDABLE in reason
        if status == "NotStarted":
            if run is not None and not _ours(run, self.obs.client_id) and not undecidable:
                self.flag("I3", ds, f"reported someone else's refresh {run.request_id} ({run.refresh_type}) as the "
                          "one it started (NotStarted)")
            elif self.obs.wait or run is None or (run not in ours and not undecidable):
                self.flag("I3", ds, f"NotStarted for {refresh_id or 'no refresh'}: only wait=False reports that, "
                          "for a refresh the task started")
            return
        if record.get("error_code") == OUTCOME_UNKNOWN and status == "Failed":
            self.i3_outcome_unknown(ds, run or (ours[-1] if ours else None))
            return
        if run is None:
            if ours:
                self.flag("I3", ds, f"reported {status} ({record.get('error_code')}) without the refresh it started "
                          f"({ours[-1].request_id}, {ours[-1].final_status()})")
            elif status not in FAILURES:
                self.flag("I3", ds, f"reported {status} for refresh {refresh_id or '-'} the emulator never started")
            return
        if not _ours(run, self.obs.client_id):
            attach = self.obs.if_running == "attach"
            refused = self.refused(status, record)
            if not (attach or refused or undecidable):
                self.flag("I3", ds, f"reported someone else's refresh {run.request_id} ({run.refresh_type}) as its "
                          f"own ({status}; if_running={self.obs.if_running!r})")
                return
            if refused:
                return
        elif run not in ours and self.obs.if_running != "attach":  # attach: a refresh still running is followed
            if self.refused(status, record):  # if_running='fail' refuses while an earlier clear's refresh runs
                return
            self.flag("I3", ds, f"reported refresh {run.request_id} started before the task was cleared, instead of "
                      "refreshing again")
            return
        if status == "TimedOut" and record.get("error_code") == WAIT_TIMEOUT:
            self.i3_timed_out(ds, run, undecidable)
            return
        if run.is_running(self.now):
            self.flag("I3", ds, f"reported {status} for refresh {run.request_id}, which is still running")
        elif status not in _expected_statuses(run):
            self.flag("I3", ds, f"reported {status} for refresh {run.request_id}, which ended "
                      f"{run.final_status()}")

    def refused(self, status: str, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` is ``if_running='fail'`` refusing to start while another refresh runs."""
        return self.obs.if_running == "fail" and status == "Failed" and record.get("error_code") == ALREADY_RUNNING

    def i3_outcome_unknown(self, ds: DatasetState, run: RefreshRun | None) -> None:
        """Outcome unknown is the truth only while the history the task read did not list the refresh yet."""
        if run is None:
            return  # no refresh started: nothing to list
        reads = [r.time for r in self.requests if r.endpoint == "history" and ds.id.lower() in r.path.lower()
                 and r.status == 200]
        last = max(reads, default=None)
        if last is None:
            self.flag("I3", ds, f"reported the outcome of refresh {run.request_id} unknown without reading the history")
        elif run.in_history(last - TOLERANCE):
            self.flag("I3", ds, f"reported the outcome of refresh {run.request_id} unknown, but the history it read "
                      f"at {last:%H:%M:%S.%f} listed it ({run.final_status()})")

    def i3_skipped(self, ds: DatasetState, reason: str, ours: list[RefreshRun]) -> None:
        # someone else's refreshes, or the task's own from before the last clear
        foreign = [r for r in ds.runs if r not in ours]
        if ours and "completed in try" not in reason:
            self.flag("I3", ds, f"Skipped ({reason!r}) although the task started refresh {ours[-1].request_id} "
                      f"({ours[-1].final_status()})")
            return
        if "completed in try" in reason:
            ok = any(r.final_status() == "Completed" for r in ours)
        elif "another refresh is running" in reason:
            ok = self.obs.if_running == "skip" and bool(foreign)
        elif "wait=False" in reason:
            ok = not self.obs.wait and bool(foreign)
        elif "timed out" in reason:
            ok = self.obs.timeout is not None
        elif "min_interval" in reason:
            ok = self.obs.min_interval is not None
        else:
            ok = False
        if not ok:
            self.flag("I3", ds, f"Skipped without a documented reason that holds: {reason!r}")

    def i3_timed_out(self, ds: DatasetState, run: RefreshRun, undecidable: bool = False) -> None:
        if not _ours(run, self.obs.client_id) and self.obs.if_running != "attach" and not undecidable:
            self.flag("I3", ds, f"TimedOut for someone else's refresh {run.request_id}")
            return
        if self.obs.timeout is None:
            self.flag("I3", ds, f"TimedOut for refresh {run.request_id} although the task has no timeout")
            return
        floor = self.deadline_floor()
        if floor is not None and run.planned_end + TOLERANCE < floor + dt.timedelta(seconds=self.obs.timeout) \
                and run.cancelled_at is None:
            self.flag("I3", ds, f"reported TimedOut for refresh {run.request_id}, which ended "
                      f"{run.final_status()} before the task's timeout of {self.obs.timeout:g} s")
        elif run.cancelled_at is not None and run.planned_end <= run.cancelled_at:
            self.flag("I3", ds, f"reported TimedOut for refresh {run.request_id}, which had ended")

    # --- I4 -------------------------------------------------------------------------------------------

    def i4(self) -> None:
        state = self.obs.state
        if self.obs.killed:
            if state == "success":
                self.flag("I4", None, "a person killed the task, yet it ended in success")
            return
        results = self.obs.results
        if results is None:
            if state == "success":
                self.flag("I4", None, "the task succeeded without reporting results")
            return
        statuses = [str(r.get("status")) for r in results]
        # the task's timeout fails it, also when it only left datasets unstarted ("timed out before it could start")
        # ... and when a refresh the history did not list yet ends with its outcome unknown at the timeout
        timed_out = any(r.get("status") == "TimedOut" and r.get("error_code") == WAIT_TIMEOUT for r in results) or \
            any(r.get("status") == "Skipped" and str(r.get("reason") or "").startswith("timed out") for r in results) \
            or any(r.get("error_code") == OUTCOME_UNKNOWN and AT_TIMEOUT in str(r.get("error_message") or "")
                   for r in results)
        failed = [s for s in statuses if s in FAILURES]
        ran = [s for s in statuses if s != "Skipped"]
        if self.obs.fail_policy == "all":
            should_fail = timed_out or (bool(failed) and len(failed) == len(ran))
        else:
            should_fail = timed_out or bool(failed)
        expected = "failed" if should_fail else "success"
        if state != expected:
            self.flag("I4", None, f"task ended {state}, but fail_policy={self.obs.fail_policy!r} with results "
                      f"{sorted(statuses)} means {expected}")

    # --- I5 -------------------------------------------------------------------------------------------

    def i5(self) -> None:
        secrets = [("the client secret", self.emu.client_secret)]
        secrets += [("an access token", token) for token in self.emu.issued_tokens()]
        for text in self.obs.texts:
            for what, secret in secrets:
                if secret and secret in text:
                    line = next((ln for ln in text.splitlines() if secret in ln), "")
                    self.flag("I5", None, f"{what} appears in the task's output: {line.replace(secret, '<SECRET>')[:200]!r}")
                    return

    def run(self) -> list[Violation]:
        records: dict[str, list[dict[str, Any]]] = {}
        for record in self.obs.results or ():
            records.setdefault(str(record.get("dataset_id", "")).lower(), []).append(record)
        self.i1()
        self.i2({k: v[0] for k, v in records.items()})
        if self.obs.results is not None:
            self.i3(records)
        self.i4()
        self.i5()
        return self.out


def check(emulator: Emulator, observation: TaskObservation) -> list[Violation]:
    """The invariants I1-I5 that ``observation`` breaks, given the emulator's request log and state."""
    return _Checker(emulator, observation).run()


def refreshes_started(emulator: Emulator, datasets: Iterable[str], client_id: str,
                      since: dt.datetime | None = None) -> dict[str, int]:
    """How many refreshes ``client_id`` started on each dataset (name or id, as given) since ``since``.

    Counts the refreshes Power BI started, not the requests: a throttled refresh request sent again is one.
    For a deployment where many tasks share one app, give each task's datasets and the window of the run.
    """
    floor = (since or dt.datetime.min.replace(tzinfo=dt.timezone.utc)) - TOLERANCE
    out: dict[str, int] = {}
    for ref in datasets:
        ds = emulator.state.dataset(ref)
        out[ref] = sum(1 for r in ds.runs if _ours(r, client_id) and r.start >= floor)
    return out


def cancel_requests(emulator: Emulator, datasets: Iterable[str], client_id: str,
                    since: dt.datetime | None = None) -> list[RequestRecord]:
    """The cancel (DELETE) requests ``client_id`` sent about refreshes of ``datasets`` since ``since``."""
    floor = (since or dt.datetime.min.replace(tzinfo=dt.timezone.utc)) - TOLERANCE
    ids = {emulator.state.dataset(ref).id.lower() for ref in datasets}
    return [r for r in emulator.requests if r.endpoint == "cancel" and r.time >= floor
            and (r.client_id or "").lower() == client_id.lower()
            and any(f"/datasets/{i}/" in r.path.lower() for i in ids)]


def texts_of(log_text: str, xcoms: Iterable[Any], alerts: Iterable[str] = ()) -> list[str]:
    """The texts I5 checks: the log, every XCom value (as JSON) and the alert texts."""
    out = [log_text, *alerts]
    for value in xcoms:
        try:
            out.append(json.dumps(value, default=str))
        except (TypeError, ValueError):
            out.append(repr(value))
    return out


def format_violations(violations: Iterable[Violation]) -> str:
    return "\n".join(f"  {v}" for v in violations)
