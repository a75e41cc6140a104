"""The shared HTTP client pool: TLS contexts built once, one client per loop and settings, counted leases."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import certifi
import httpx
import pytest

from pbi_taskflow.client import pool as _httppool
from pbi_taskflow.client.pool import MAX_CONNECTIONS, ClientPool, PoolKey, SharedClient, ssl_context
from pbi_taskflow.errors import ConfigurationError

ROOT = "https://api.powerbi.com/v1.0/myorg"


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    """A CA bundle file (certifi's)."""
    path = tmp_path / "ca.pem"
    shutil.copyfile(certifi.where(), path)
    return str(path)


def test_ssl_context_is_built_once_per_bundle_and_again_when_the_file_changes(bundle: str) -> None:
    first = ssl_context(bundle)
    assert ssl_context(bundle) is first
    stat = os.stat(bundle)
    os.utime(bundle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ssl_context(bundle) is not first
    assert ssl_context(None) is ssl_context(None)


def test_a_bundle_without_certificates_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match="no usable PEM CA certificates"):
        ssl_context(str(bad))
    with pytest.raises(ConfigurationError, match="cannot be read"):
        ssl_context(str(tmp_path / "missing.pem"))


def test_pool_key_names_the_origin_and_the_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower() in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}:
            monkeypatch.delenv(name)
    key = PoolKey.of(ROOT, None, (10.0, 60.0))
    assert key == PoolKey.of("https://API.powerbi.com/v1.0/other", None, (10.0, 60.0))
    assert key.origin == "https://api.powerbi.com"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert PoolKey.of(ROOT, None, (10.0, 60.0)) != key
    assert PoolKey.of(ROOT, None, (10.0, 30.0)) != PoolKey.of(ROOT, None, (10.0, 60.0))


def test_leases_of_one_loop_and_key_share_one_client_closed_by_the_last_release(bundle: str) -> None:
    pool = ClientPool()
    key = PoolKey.of(ROOT, bundle, (10.0, 60.0))

    async def main() -> None:
        first, second = pool.lease(key), pool.lease(key)
        other = pool.lease(PoolKey.of(ROOT, bundle, (5.0, 30.0)))
        shared = await first.client()
        assert await second.client() is shared
        assert await other.client() is not shared
        assert pool.clients() == 2
        await first.release()
        assert not shared.lanes[0].is_closed
        await second.release()
        assert all(lane.is_closed for lane in shared.lanes)
        await other.release()
        assert pool.clients() == 0
        third = pool.lease(key)
        assert await third.client() is not shared  # a new client once the old one is closed
        await third.release()

    asyncio.run(main())


def test_a_new_event_loop_never_gets_the_client_of_an_ended_one(bundle: str) -> None:
    pool = ClientPool()
    key = PoolKey.of(ROOT, bundle, (10.0, 60.0))

    async def lease_and_keep() -> tuple[object, object]:
        lease = pool.lease(key)
        return lease, await lease.client()

    old_lease, old_client = asyncio.run(lease_and_keep())  # never released: its loop ended first

    async def again() -> object:
        lease = pool.lease(key)
        try:
            return await lease.client()
        finally:
            await lease.release()
            await old_lease.release()  # type: ignore[attr-defined]  # from another loop: dropped, not awaited

    assert asyncio.run(again()) is not old_client


def test_a_client_that_failed_to_open_is_opened_again_by_the_next_lease(tmp_path: Path) -> None:
    pool = ClientPool()
    path = tmp_path / "ca.pem"
    path.write_text("garbage\n")
    key = PoolKey.of(ROOT, str(path), (10.0, 60.0))

    async def main() -> None:
        lease = pool.lease(key)
        with pytest.raises(ConfigurationError):
            await lease.client()
        await lease.release()
        shutil.copyfile(certifi.where(), path)
        stat = os.stat(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        retry = pool.lease(key)
        assert isinstance(await retry.client(), SharedClient)
        await retry.release()

    asyncio.run(main())


def test_shared_client_lets_at_most_its_connections_in_flight_and_serves_everyone_in_order() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"n": request.url.params["n"]})

    async def main() -> list[str]:
        lanes = [httpx.AsyncClient(transport=httpx.MockTransport(handler)) for _ in range(len(_lanes()))]
        client = SharedClient(lanes)
        answers = await asyncio.gather(*(client.request("GET", f"https://x.test/?n={i}") for i in range(200)))
        await client.aclose()
        assert all(lane.is_closed for lane in lanes)
        return [a.json()["n"] for a in answers]

    assert asyncio.run(main()) == [str(i) for i in range(200)]
    assert peak == MAX_CONNECTIONS


def _lanes() -> range:
    return range(MAX_CONNECTIONS // _httppool.LANE_CONNECTIONS)
