"""ManagedIdentityCredential through real MSAL against a loopback App Service identity endpoint.

The endpoint (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``, as App Service and Functions set them)
hands out tokens it obtains from the emulator, so the whole chain ends in real Power BI calls.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from pbi_taskflow.client.auth import ClientSecretCredential, ManagedIdentityCredential, clear_token_caches
from pbi_taskflow.client.clouds import get_cloud
from pbi_taskflow.client.sync import PowerBIClient
from pbi_taskflow.errors import AuthenticationError

pytestmark = pytest.mark.integration

HEADER = "identity-header-" + uuid.uuid4().hex
RESOURCE = "https://analysis.windows.net/powerbi/api"


class IdentityEndpoint:
    """A loopback App Service managed-identity endpoint; records the requests it answered."""

    def __init__(self, issue) -> None:
        self.issue = issue
        self.requests: list[dict[str, list[str]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                endpoint.requests.append(query)
                if self.headers.get("X-IDENTITY-HEADER") != HEADER:
                    self._send(400, {"statusCode": 400, "message": "Missing or wrong X-IDENTITY-HEADER"})
                elif query.get("resource") != [RESOURCE]:
                    self._send(500, {"statusCode": 500, "message": "Unknown resource"})
                else:
                    token = endpoint.issue()
                    self._send(200, {"access_token": token, "expires_on": str(int(time.time()) + 3600),
                                     "resource": RESOURCE, "token_type": "Bearer"})

            def _send(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def identity(emulator, monkeypatch, clean_env):
    """The endpoint, wired into the environment the way App Service does it."""
    clear_token_caches()
    cloud = get_cloud("public", authority_host=emulator.authority_host, api_root=emulator.api_root)
    upstream = ClientSecretCredential(emulator.tenant_id, emulator.client_id, emulator.client_secret, cloud=cloud,
                                      ca_bundle=emulator.ca_bundle)

    def issue() -> str:
        token = upstream.get_token().token
        upstream.invalidate(token)  # every identity request gets a fresh token from Entra
        return token

    endpoint = IdentityEndpoint(issue)
    endpoint.start()
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", HEADER)
    monkeypatch.delenv("IMDS_ENDPOINT", raising=False)
    try:
        yield endpoint, cloud
    finally:
        endpoint.stop()
        clear_token_caches()


def test_user_assigned_identity_calls_power_bi(identity, emulator):
    """A user-assigned identity gets a token (client_id passed), Power BI accepts it, and a rejected one is renewed."""
    endpoint, cloud = identity
    mi_client = str(uuid.uuid4())
    emulator.add_workspace("Sales")
    with PowerBIClient(credential=ManagedIdentityCredential(mi_client, cloud=cloud), ca_bundle=emulator.ca_bundle) as client:
        assert [w.name for w in client.list_workspaces()] == ["Sales"]
        client.list_workspaces()
        assert len(endpoint.requests) == 1
        emulator.expire_tokens()
        client.list_workspaces()  # 403 TokenExpired: the cached token is dropped and one new one fetched
    assert len(endpoint.requests) == 2
    assert endpoint.requests[0]["client_id"] == [mi_client]


def test_concurrent_callers_share_one_identity_request(identity):
    """Ten threads on a cold cache cause one request to the identity endpoint."""
    endpoint, cloud = identity
    barrier = threading.Barrier(10)
    tokens: list[str] = []

    def worker() -> None:
        barrier.wait(timeout=10)
        tokens.append(ManagedIdentityCredential(cloud=cloud).get_token().token)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(tokens) == 10
    assert len(set(tokens)) == 1
    assert len(endpoint.requests) == 1
    assert "client_id" not in endpoint.requests[0]


def test_refused_identity_request_is_explained(identity, monkeypatch):
    """A refusal by the identity endpoint becomes an AuthenticationError naming the managed identity."""
    _endpoint, cloud = identity
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    with pytest.raises(AuthenticationError, match="managed identity") as info:
        ManagedIdentityCredential(cloud=cloud).get_token()
    assert "assigned" in str(info.value)
