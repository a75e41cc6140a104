"""The emulator's request log and counters, for assertions in tests and benchmarks."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from typing import Any


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request the emulator answered (or dropped).

    :param method: HTTP method.
    :param path: path without the query string.
    :param query: the raw query string.
    :param endpoint: endpoint name (``token``, ``history``, ...; ``unknown`` for unrouted paths).
    :param status: the HTTP status sent, or ``None`` when the connection was dropped.
    :param time: emulated time of the request (aware, UTC).
    :param real_time: wall-clock time of the request (epoch seconds).
    :param fault: the injected fault applied, if any.
    :param request_id: the ``RequestId`` header sent (for a refresh POST that started a refresh: its id).
    :param body: the request body, parsed (JSON, or the form fields of a token request), with secrets
        (``client_secret``, ``client_assertion``, ...) replaced by ``"***"``; ``None`` when empty.
    :param client_id: the caller's client id: the app of the bearer token for Power BI calls, the
        ``client_id`` field for token requests (``None`` when unknown).
    :param profile_id: the ``X-PowerBI-Profile-Id`` header sent, as sent (``None`` without one).
    """

    method: str
    path: str
    query: str
    endpoint: str
    status: int | None
    time: dt.datetime
    real_time: float
    fault: str | None = None
    request_id: str | None = None
    body: Any = None
    client_id: str | None = None
    profile_id: str | None = None


class RequestLog:
    """Thread-safe log of :class:`RequestRecord`, keeping the newest ``limit`` records.

    :param limit: how many records to keep (a long-running emulator must not grow without bound).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=limit)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def count(self, endpoint: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._records if (endpoint is None or r.endpoint == endpoint)
                       and (method is None or r.method == method.upper()))

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
