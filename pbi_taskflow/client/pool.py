"""One shared ``httpx.AsyncClient`` per event loop and connection settings, for the triggerer.

A triggerer runs many refresh triggers in one event loop. A client per trigger would mean a TLS
context per trigger (tens of milliseconds and about a megabyte each, built on the loop), a connection
and a handshake per trigger, and sockets by the thousand. Instead, every trigger that talks to the same
API origin with the same trust settings and timeouts leases one client from :class:`ClientPool`; its
connections are bounded and kept alive, and the last lease to end closes it. The TLS context is built
once per CA bundle, in a worker thread, and reused (:func:`ssl_context`).

httpx clients belong to the event loop they first ran in, so the pool keeps clients per loop: a new
loop (a restarted triggerer, another ``asyncio.run``) never receives a client of an old one. A failed
connection is discarded by httpx, so a reset affects only the request that was on it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pbi_taskflow.client import offloop
from pbi_taskflow.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx

#: Connections of one pooled client (one client per API origin, so per host). Requests beyond it wait
#: for a free connection.
MAX_CONNECTIONS = 32
#: Connections of each httpx client (lane) of a pooled client (see :class:`SharedClient`).
LANE_CONNECTIONS = 1
#: Seconds an idle keep-alive connection is kept (below the usual 30-240 s of servers and load balancers).
KEEPALIVE_EXPIRY = 20.0

#: Environment variables httpx reads when it builds a client: a change makes a new client.
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
_TRUST_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class PoolKey:
    """What makes two pooled clients interchangeable.

    :param origin: scheme, host and port of the API root.
    :param ca_bundle: PEM file of the CAs to trust, ``None`` for httpx's default trust.
    :param timeout: ``(connect, read)`` seconds.
    :param environment: the proxy and trust-store variables httpx reads, as sorted pairs.
    """

    origin: str
    ca_bundle: str | None
    timeout: tuple[float, float]
    environment: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, api_root: str, ca_bundle: str | None, timeout: tuple[float, float]) -> PoolKey:
        """The key of a client for ``api_root`` under the current environment."""
        parts = urlsplit(api_root)
        environment = tuple(sorted(
            (name, value) for name, value in os.environ.items() if name.lower() in _PROXY_VARS or name in _TRUST_VARS
        ))
        return cls(f"{parts.scheme}://{parts.netloc}".lower(), ca_bundle or None, timeout, environment)


# --- TLS contexts ----------------------------------------------------------------------------------

_contexts: dict[tuple[str | None, ...], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The client TLS context trusting ``ca_bundle`` (else httpx's default trust), built once and reused.

    A rewritten bundle file gets a new context. Blocking (reads files): from async code, call it in a
    worker thread.

    :raises ConfigurationError: the bundle holds no usable PEM certificates.
    """
    if ca_bundle:
        try:
            stat = os.stat(ca_bundle)
        except OSError as exc:
            msg = f"ca_bundle {ca_bundle!r} cannot be read ({exc.strerror})."
            raise ConfigurationError(msg) from None
        key: tuple[str | None, ...] = (ca_bundle, str(stat.st_mtime_ns), str(stat.st_size))
    else:
        key = (None, *(os.environ.get(name, "") for name in _TRUST_VARS))
    with _contexts_lock:  # concurrent first uses of one bundle build it once
        context = _contexts.get(key)
        if context is None:
            context = _build_context(ca_bundle)
            for stale in [k for k in _contexts if k[0] == key[0]]:
                del _contexts[stale]
            _contexts[key] = context
    return context


def _build_context(ca_bundle: str | None) -> ssl.SSLContext:
    if not ca_bundle:
        import httpx

        return httpx.create_ssl_context()  # certifi, or SSL_CERT_FILE / SSL_CERT_DIR
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (ssl.SSLError, ValueError) as exc:
        msg = f"ca_bundle {ca_bundle!r} holds no usable PEM CA certificates ({exc})."
        raise ConfigurationError(msg) from None


def clear_ssl_contexts() -> None:
    """Forget the cached TLS contexts (clients that hold one keep it)."""
    with _contexts_lock:
        _contexts.clear()


# --- the pool ----------------------------------------------------------------------------------------


def _new_lanes(key: PoolKey) -> list[httpx.AsyncClient]:
    import httpx

    connect, read = key.timeout
    context = ssl_context(key.ca_bundle)
    limits = httpx.Limits(max_connections=LANE_CONNECTIONS, max_keepalive_connections=LANE_CONNECTIONS,
                          keepalive_expiry=KEEPALIVE_EXPIRY)
    return [httpx.AsyncClient(verify=context, timeout=httpx.Timeout(read, connect=connect), limits=limits)
            for _ in range(MAX_CONNECTIONS // LANE_CONNECTIONS)]


class SharedClient:
    """The pooled client: ``httpx.AsyncClient`` lanes of a few connections each, and a queue in front of them.

    httpcore matches its queued requests against its connections, and checks every idle connection,
    each time a request starts or ends: with a thousand waits the cost grows with the queue times
    the connections, on the event loop. Here a request first waits, in order, for a free lane; a lane
    never has more requests than connections, so that matching stays small. The most recently used
    lane is handed out first, so at low load the other lanes' connections expire.

    :param lanes: the clients (closed by :meth:`aclose`).
    """

    def __init__(self, lanes: list[httpx.AsyncClient]) -> None:
        self.lanes = lanes
        self._free: asyncio.LifoQueue[int] = asyncio.LifoQueue()
        for _ in range(LANE_CONNECTIONS):
            for lane in reversed(range(len(lanes))):
                self._free.put_nowait(lane)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``httpx.AsyncClient.request`` on a free lane (the whole answer is read before the lane frees up)."""
        lane = await self._free.get()
        try:
            return await self.lanes[lane].request(method, url, **kwargs)
        finally:
            self._free.put_nowait(lane)

    async def aclose(self) -> None:
        """Close every lane's connections."""
        await asyncio.gather(*(lane.aclose() for lane in self.lanes))


async def _open(key: PoolKey) -> SharedClient:
    return SharedClient(await offloop.run(_new_lanes, key))


class _Entry:
    """A pooled client: opened in a worker thread, counted by its leases."""

    __slots__ = ("opening", "users")

    def __init__(self, opening: asyncio.Task[SharedClient]) -> None:
        self.opening = opening
        self.users = 0


class Lease:
    """One user's share of a pooled client; :meth:`release` it when done (the last release closes it)."""

    def __init__(self, pool: ClientPool, loop: asyncio.AbstractEventLoop, key: PoolKey, entry: _Entry) -> None:
        self._pool = pool
        self.loop = loop
        self.key = key
        self._entry: _Entry | None = entry

    async def client(self) -> SharedClient:
        """The shared client (opened off the event loop on first use)."""
        if self._entry is None:
            msg = "This lease of a pooled HTTP client was released."
            raise RuntimeError(msg)
        return await asyncio.shield(self._entry.opening)

    async def release(self) -> None:
        """End this share; the last one closes the client."""
        if asyncio.get_running_loop() is not self.loop:
            self.abandon()
            return
        entry, self._entry = self._entry, None
        if entry is not None:
            await self._pool._release(self.loop, self.key, entry)

    def abandon(self) -> None:
        """End this share without closing anything (its event loop has ended or is not the running one)."""
        entry, self._entry = self._entry, None
        if entry is not None:
            self._pool._drop(self.loop, self.key, entry)


class ClientPool:
    """Shared ``httpx.AsyncClient`` objects, one per (event loop, :class:`PoolKey`), reference-counted."""

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PoolKey, _Entry]] = (
            weakref.WeakKeyDictionary()
        )

    def lease(self, key: PoolKey) -> Lease:
        """A share of the running loop's client for ``key`` (opened on first :meth:`Lease.client`).

        Must be called in a running event loop; does not block it.
        """
        loop = asyncio.get_running_loop()
        for old in [other for other in list(self._loops) if other.is_closed()]:
            self._loops.pop(old, None)  # their clients died with their loop
        entries = self._loops.setdefault(loop, {})
        entry = entries.get(key)
        if entry is None:
            entry = _Entry(loop.create_task(_open(key)))
            entry.opening.add_done_callback(lambda task: self._opened(loop, key, task))
            entries[key] = entry
        entry.users += 1
        return Lease(self, loop, key, entry)

    def clients(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """How many pooled clients ``loop`` (default: the running one) has open or opening."""
        return len(self._loops.get(loop or asyncio.get_running_loop(), {}))

    def _opened(self, loop: asyncio.AbstractEventLoop, key: PoolKey, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:  # the next lease tries again
            entries = self._loops.get(loop, {})
            if entries.get(key) is not None and entries[key].opening is task:
                del entries[key]

    def _drop(self, loop: asyncio.AbstractEventLoop, key: PoolKey, entry: _Entry) -> bool:
        """Count one user less; ``True`` if it was the last (the entry is then out of the pool)."""
        entry.users -= 1
        if entry.users > 0:
            return False
        entries = self._loops.get(loop, {})
        if entries.get(key) is entry:
            del entries[key]
        return True

    async def _release(self, loop: asyncio.AbstractEventLoop, key: PoolKey, entry: _Entry) -> None:
        if not self._drop(loop, key, entry):
            return
        if not entry.opening.done():
            entry.opening.cancel()  # nobody waits for it; the thread's unused client holds no connection
            return
        if not entry.opening.cancelled() and entry.opening.exception() is None and not loop.is_closed():
            await entry.opening.result().aclose()


_POOL = ClientPool()


def shared_pool() -> ClientPool:
    """The process-wide :class:`ClientPool`."""
    return _POOL


__all__ = ["KEEPALIVE_EXPIRY", "MAX_CONNECTIONS", "ClientPool", "SharedClient", "Lease", "PoolKey", "clear_ssl_contexts",
           "shared_pool", "ssl_context"]
