"""Refresh requests whose outcome is not known yet, settled from the refresh history, never by sending again.

Before a refresh request is sent, the task records it as a *probe*: the target, when the request was
sent, and the request ids the dataset's history already held. When Power BI answers with the refresh
id the probe becomes a watched refresh. When the answer is lost (a dropped connection, a timeout or a
5xx once the request may have arrived) or the process dies before it recorded the answer, the probe
is watched through the history on the refresh's poll schedule:

- a new API refresh of the same kind that started after the request is the request's own and is
  followed (an enhanced one only when its options match; when they cannot be read it is followed as
  *attached*, so it is never cancelled);
- a refresh someone else runs means Power BI refused the request as "already running": the task's
  ``if_running`` policy applies to it;
- nothing within the appearance grace: in the try that sent the request the dataset ends with
  :class:`~pbi_taskflow.errors.RefreshOutcomeUnknownError` (sending again could start a second refresh);
  a later try (after a crash) sends the request again, the grace having shown that none started.

A dataflow's refresh request is answered without any id, so every dataflow refresh starts as a probe that
Power BI *accepted*: the first new transaction that started after the request (not scheduled) is its own. Power BI
runs one transaction per dataflow at a time and refuses a request while one runs, so that transaction is followed as
the task's own (cancelled like any refresh the task started); only when the answer was lost is it followed as
attached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pbi_taskflow.client.durations import format_seconds
from pbi_taskflow.client.models import Handle, HistoryEntry, Target, parse_timestamp
from pbi_taskflow.engine.targets import target_from_dict, target_to_dict
from pbi_taskflow.errors import RefreshOutcomeUnknownError

#: Keys of probes among the watched refreshes.
PROBE_PREFIX = "probe:"
#: A refresh that started this long before the request (client clock) still counts as the request's own.
CLOCK_SKEW = dt.timedelta(seconds=5)
_API_KINDS = {"viaapi": False, "viaenhancedapi": True, "reliableprocessing": True}


def is_probe(key: str) -> bool:
    """Whether a watched key is a probe's."""
    return key.startswith(PROBE_PREFIX)


@dataclasses.dataclass(frozen=True)
class Probe:
    """A refresh request sent (or about to be sent) whose refresh id is not known.

    :param target: the dataset and options requested.
    :param requested_at: ISO-8601 UTC time the request was sent.
    :param attempt: the task try that sent it.
    :param known: request ids the dataset's history held before the request.
    :param accepted: Power BI answered the request with success but without an id (a dataflow's refresh).
    """

    target: Target
    requested_at: str
    attempt: int
    known: tuple[str, ...] = ()
    accepted: bool = False

    @property
    def key(self) -> str:
        return PROBE_PREFIX + self.target.dataset_id.lower()

    @property
    def enhanced(self) -> bool:
        return self.target.options.is_enhanced

    def to_dict(self) -> dict[str, Any]:
        return {"target": target_to_dict(self.target), "requested_at": self.requested_at, "attempt": self.attempt,
                "known": list(self.known), "accepted": self.accepted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Probe:
        return cls(target=target_from_dict(data["target"]), requested_at=str(data["requested_at"]),
                   attempt=int(data.get("attempt") or 1), known=tuple(data.get("known") or ()),
                   accepted=bool(data.get("accepted")))

    def handle(self, refresh_id: str, *, attached: bool = False, note: str | None = None) -> Handle:
        """The handle of the refresh this request started (``refresh_id``)."""
        target = self.target
        return Handle(
            workspace_id=target.workspace_id, workspace_name=target.workspace_name, dataset_id=target.dataset_id,
            dataset_name=target.dataset_name, refresh_id=refresh_id,
            kind="dataflow" if target.is_dataflow else "enhanced" if self.enhanced else "standard",
            requested_at=self.requested_at, attached=attached,
            note=note, profile_id=target.profile_id,
        )

    def placeholder(self) -> Handle:
        """A handle for messages while the refresh id is unknown."""
        return self.handle("(not known yet)")


@dataclasses.dataclass(frozen=True)
class Finding:
    """What one history read says about a probe.

    :param ours: the refresh the request started, if the history shows it.
    :param other: a refresh someone else is running on the dataset, if any.
    """

    ours: HistoryEntry | None = None
    other: HistoryEntry | None = None


def _is_running(entry: HistoryEntry) -> bool:
    return not entry.status.is_terminal and not entry.end


def _same_kind(probe: Probe, entry: HistoryEntry) -> bool:
    """Whether ``entry`` is of the kind the request starts: an API refresh of its kind; any unscheduled transaction."""
    kind = (entry.refresh_type or "").replace(" ", "").lower()
    if probe.target.is_dataflow:
        return kind != "scheduled"
    return _API_KINDS.get(kind) is probe.enhanced


def find(probe: Probe, entries: Iterable[HistoryEntry]) -> Finding:
    """Look in the history (newest first) for the request's refresh, or for one that blocked it."""
    since = (parse_timestamp(probe.requested_at) or dt.datetime.now(dt.timezone.utc)) - CLOCK_SKEW
    known = {k.lower() for k in probe.known}
    ours = other = None
    for entry in entries:
        if not entry.request_id:
            continue
        started = parse_timestamp(entry.start)
        fresh = entry.request_id.lower() not in known and started is not None and started >= since
        if ours is None and fresh and _same_kind(probe, entry):
            ours = entry
        elif other is None and _is_running(entry):
            other = entry
    return Finding(ours=ours, other=other)


def not_someone_elses(finding: Finding, options_match: bool | None) -> Finding:
    """The finding once an enhanced candidate's options were compared: a mismatch is someone else's refresh."""
    if finding.ours is None or options_match is not False:
        return finding
    other = finding.other
    if other is None and _is_running(finding.ours):
        other = finding.ours
    return Finding(ours=None, other=other)


def utcnow_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def outcome_unknown(probe: Probe, waited: float, *, timed_out: bool = False) -> RefreshOutcomeUnknownError:
    """The error of a dataset whose refresh request got no answer and whose refresh never showed up."""
    target = probe.target
    why = "the task's timeout passed" if timed_out else f"none appeared in the refresh history within {waited:.0f} s"
    answer = "was accepted, but no refresh of it was listed" if probe.accepted else "got no usable answer"
    return RefreshOutcomeUnknownError(
        f"The refresh request for {target.noun} {target.dataset_name!r} in workspace {target.workspace_name!r} (sent "
        f"{probe.requested_at}) {answer}, and {why}. It was not sent again, to avoid starting a second "
        f"refresh. Check the {target.noun}'s refresh history in Power BI; a retry of the task looks at the history "
        "first and sends a new request only when no refresh started.",
        code="RefreshOutcomeUnknown", workspace=target.workspace_name, dataset=target.dataset_name,
    )


def unlisted_at_timeout(handle: Handle, waited: float) -> RefreshOutcomeUnknownError:
    """The error of a standard refresh Power BI accepted but had not listed in its history by the task's timeout."""
    return RefreshOutcomeUnknownError(
        f"Power BI accepted refresh {handle.refresh_id} of dataset {handle.dataset_name!r} in workspace "
        f"{handle.workspace_name!r} (requested {handle.requested_at}), but its refresh history did not list it yet "
        f"when the task's timeout of {format_seconds(waited)} s passed, so whether it is running or has ended is unknown. Check "
        "the dataset's refresh history in Power BI before refreshing it again; if this happens often, raise the "
        "task's timeout.",
        code="RefreshOutcomeUnknown", workspace=handle.workspace_name, dataset=handle.dataset_name,
        request_id=handle.refresh_id,
    )


__all__ = ["CLOCK_SKEW", "PROBE_PREFIX", "Finding", "Probe", "find", "is_probe", "not_someone_elses", "outcome_unknown", "unlisted_at_timeout", "utcnow_iso"]
