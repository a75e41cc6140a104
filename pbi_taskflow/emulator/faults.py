"""Fault injection: the next N calls to an endpoint answer with a fault instead of (or after) the real answer."""

from __future__ import annotations

import dataclasses
import threading

ENDPOINTS = frozenset(
    {"discovery", "token", "groups", "datasets", "dataset", "refresh_post", "history", "details", "cancel", "*"}
)
KINDS = frozenset({"throttle", "error", "drop", "drop_after", "slow", "expired_token", "lost"})
POWERBI_ENDPOINTS = frozenset({"groups", "datasets", "dataset", "refresh_post", "history", "details", "cancel"})
#: Faults that only make sense on some endpoints; a ``*`` fault of these kinds waits for such an endpoint.
APPLIES_TO = {"expired_token": POWERBI_ENDPOINTS, "lost": frozenset({"refresh_post"})}


@dataclasses.dataclass
class Fault:
    """One queued fault.

    :param endpoint: the endpoint name it applies to (``"*"`` for any).
    :param kind: ``throttle``, ``error``, ``drop``, ``drop_after``, ``slow``, ``expired_token`` or ``lost``
        (``refresh_post`` only: answer 202 as usual but start nothing, as when the service drops a request).
    :param remaining: how many more calls it applies to.
    :param retry_after: seconds sent in ``Retry-After`` for ``throttle``.
    :param status: the HTTP status for ``error``.
    :param delay: real seconds to wait for ``slow``.
    """

    endpoint: str
    kind: str
    remaining: int = 1
    retry_after: float = 1
    status: int = 503
    delay: float = 2.0


class FaultQueue:
    """Thread-safe queue of faults, consumed in the order they were injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(self, endpoint: str, fault: str, *, count: int = 1, retry_after: float = 1, status: int = 503,
               delay: float = 2.0) -> Fault:
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
        item = Fault(endpoint, fault, count, retry_after, status, delay)
        with self._lock:
            self._faults.append(item)
        return item

    def take(self, endpoint: str) -> Fault | None:
        """Consume one application of the first fault matching ``endpoint``."""
        with self._lock:
            for item in self._faults:
                if item.endpoint not in (endpoint, "*") or item.remaining <= 0:
                    continue
                if endpoint not in APPLIES_TO.get(item.kind, (endpoint,)):
                    continue  # a '*' fault of a Power BI-only kind waits for a Power BI call
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
