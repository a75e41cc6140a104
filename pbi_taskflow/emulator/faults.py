"""Fault injection: the next N calls to an endpoint answer with a fault instead of (or after) the real answer."""

from __future__ import annotations

import dataclasses
import threading

from pbi_taskflow.emulator.dataflows import DATAFLOW_ENDPOINTS
from pbi_taskflow.emulator.gateways import GATEWAY_DATASET_ENDPOINTS, GATEWAY_ENDPOINTS
from pbi_taskflow.emulator.profiles import PROFILE_ENDPOINTS

ENDPOINTS = frozenset(
    {"discovery", "token", "groups", "datasets", "dataset", "tables", "refresh_post", "history", "details", "cancel",
     "*"} | DATAFLOW_ENDPOINTS | GATEWAY_ENDPOINTS | PROFILE_ENDPOINTS
)
KINDS = frozenset({"throttle", "error", "drop", "drop_after", "slow", "expired_token", "lost", "race", "race_drop"})
POWERBI_ENDPOINTS = frozenset({"groups", "datasets", "dataset", "tables", "refresh_post", "history", "details",
                               "cancel"} | DATAFLOW_ENDPOINTS | GATEWAY_ENDPOINTS | PROFILE_ENDPOINTS)
#: Endpoints whose calls are about one dataset (the only ones a ``dataset=`` fault can apply to).
DATASET_ENDPOINTS = frozenset({"dataset", "tables", "refresh_post", "history", "details", "cancel"}
                              | GATEWAY_DATASET_ENDPOINTS)
#: Endpoints whose calls are about one workspace (the only ones a ``workspace=`` fault can apply to).
WORKSPACE_ENDPOINTS = DATASET_ENDPOINTS | {"datasets"} | DATAFLOW_ENDPOINTS
#: Faults that only make sense on some endpoints; a ``*`` fault of these kinds waits for such an endpoint.
APPLIES_TO = {"expired_token": POWERBI_ENDPOINTS, "lost": frozenset({"refresh_post"}),
              "race": frozenset({"refresh_post"}), "race_drop": frozenset({"refresh_post"})}
#: Refresh types a foreign refresh (``race``, ``race_drop``) may have, as the history shows them.
FOREIGN_TYPES = frozenset({"Scheduled", "OnDemand", "ViaApi", "ViaEnhancedApi"})


@dataclasses.dataclass
class Fault:
    """One queued fault.

    :param endpoint: the endpoint name it applies to (``"*"`` for any).
    :param kind: ``throttle``, ``error``, ``drop``, ``drop_after``, ``slow``, ``expired_token``, ``lost``
        (``refresh_post`` only: answer 202 as usual but start nothing, as when the service drops a request),
        ``race`` (``refresh_post`` only: a foreign refresh starts on the dataset just before the request is
        processed, so it gets "Another refresh request is already executing") or ``race_drop`` (``refresh_post``
        only: the request is dropped unanswered without starting anything, and a foreign refresh starts at that
        moment, so the history shows a refresh that is not the caller's).
    :param remaining: how many more calls it applies to.
    :param retry_after: seconds sent in ``Retry-After`` for ``throttle``.
    :param status: the HTTP status for ``error``.
    :param delay: real seconds to wait for ``slow``.
    :param dataset: the lower-case id of the only dataset whose calls it applies to (``None``: any call).
    :param refresh_type: the history ``refreshType`` of the foreign refresh of ``race`` / ``race_drop``.
    :param duration: emulated seconds the foreign refresh runs (``None``: the dataset's configured duration).
    :param workspace: the lower-case id of the only workspace whose calls it applies to (``None``: any call).
    """

    endpoint: str
    kind: str
    remaining: int = 1
    retry_after: float = 1
    status: int = 503
    delay: float = 2.0
    dataset: str | None = None
    refresh_type: str = "Scheduled"
    duration: float | None = None
    workspace: str | None = None

    def applies(self, endpoint: str, dataset: str | None, workspace: str | None = None) -> bool:
        """Whether a call to ``endpoint`` about ``dataset`` in ``workspace`` (ids or ``None``) consumes this fault."""
        if self.endpoint not in (endpoint, "*") or self.remaining <= 0:
            return False
        if endpoint not in APPLIES_TO.get(self.kind, (endpoint,)):
            return False  # a '*' fault of a Power BI-only kind waits for a Power BI call
        if self.workspace is not None and (workspace or "").lower() != self.workspace:
            return False
        return self.dataset is None or (dataset or "").lower() == self.dataset


class FaultQueue:
    """Thread-safe queue of faults, consumed in the order they were injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(self, endpoint: str, fault: str, *, count: int = 1, retry_after: float = 1, status: int = 503,
               delay: float = 2.0, dataset: str | None = None, refresh_type: str = "Scheduled",
               duration: float | None = None, workspace: str | None = None) -> Fault:
        if endpoint not in ENDPOINTS:
            msg = f"Unknown endpoint {endpoint!r} for a fault; expected one of {', '.join(sorted(ENDPOINTS))}."
            raise ValueError(msg)
        if fault not in KINDS:
            msg = f"Unknown fault {fault!r}; expected one of {', '.join(sorted(KINDS))}."
            raise ValueError(msg)
        allowed = APPLIES_TO.get(fault)
        if allowed is not None and endpoint != "*" and endpoint not in allowed:
            msg = f"Fault {fault!r} applies only to {', '.join(sorted(allowed))} (or '*'), not to {endpoint!r}."
            raise ValueError(msg)
        if count < 1:
            msg = f"count must be >= 1 (the number of calls the fault applies to), got {count!r}."
            raise ValueError(msg)
        if fault == "error" and not 400 <= status <= 599:
            msg = f"status for an 'error' fault must be an HTTP error status (400-599), got {status!r}."
            raise ValueError(msg)
        if dataset is not None and endpoint != "*" and endpoint not in DATASET_ENDPOINTS:
            msg = (f"A fault for one dataset applies to calls about a dataset ({', '.join(sorted(DATASET_ENDPOINTS))} "
                   f"or '*'), not to {endpoint!r}.")
            raise ValueError(msg)
        if workspace is not None and endpoint != "*" and endpoint not in WORKSPACE_ENDPOINTS:
            msg = (f"A fault for one workspace applies to calls about a workspace "
                   f"({', '.join(sorted(WORKSPACE_ENDPOINTS))} or '*'), not to {endpoint!r}.")
            raise ValueError(msg)
        if refresh_type not in FOREIGN_TYPES:
            msg = f"Unknown refresh_type {refresh_type!r}; expected one of {', '.join(sorted(FOREIGN_TYPES))}."
            raise ValueError(msg)
        if duration is not None and duration < 0:
            msg = f"duration must be >= 0 emulated seconds, got {duration!r}."
            raise ValueError(msg)
        item = Fault(endpoint, fault, count, retry_after, status, delay, dataset.lower() if dataset else None,
                     refresh_type, duration, workspace.lower() if workspace else None)
        with self._lock:
            self._faults.append(item)
        return item

    def take(self, endpoint: str, dataset: str | None = None, workspace: str | None = None) -> Fault | None:
        """Consume one application of the first fault matching ``endpoint`` (a call about ``dataset`` in ``workspace``,
        ids)."""
        with self._lock:
            for item in self._faults:
                if not item.applies(endpoint, dataset, workspace):
                    continue
                item.remaining -= 1
                if item.remaining == 0:
                    self._faults.remove(item)
                return item
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
