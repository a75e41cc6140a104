"""The token machinery every credential shares.

One slot per (authority, tenant, client, scope, credential fingerprint) per process holds the MSAL token
cache, the MSAL application (built lazily on the first token request, because building it does network
I/O) and a lock, so concurrent callers on a cold cache coalesce into one token request. The fingerprint
is a SHA-256 digest of the credential material, so a wrong or rotated secret never reuses a token
obtained with another one.

The key holds no service principal profile, on purpose: a profile is chosen per Power BI call by the
``X-PowerBI-Profile-Id`` header, never sent to Entra ID, and Power BI takes the app's own token for every
profile of the app. One token of the service principal serves all its profiles; keying by profile would only
multiply token requests.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

from pbi_taskflow.client.auth._errors import error_from_msal
from pbi_taskflow.client.clouds import Cloud, get_cloud
from pbi_taskflow.client.urls import is_loopback, require_https
from pbi_taskflow.errors import ConfigurationError, PowerBIError

log = logging.getLogger("pbi_taskflow.client.auth")

#: A cached token with more than this many seconds left is used when its renewal fails transiently.
STILL_VALID_MARGIN = 120


class AccessToken(NamedTuple):
    """A bearer token and its expiry (epoch seconds). Its repr never shows the token."""

    token: str
    expires_on: int

    def __repr__(self) -> str:
        return f"AccessToken(token='***', expires_on={self.expires_on})"


@runtime_checkable
class Credential(Protocol):
    """What the clients need from a credential."""

    def get_token(self) -> AccessToken:
        """A valid Power BI access token (cached and renewed before expiry)."""

    def invalidate(self, token: str) -> None:
        """Forget ``token`` because Power BI rejected it; the next :meth:`get_token` fetches a new one."""


@dataclasses.dataclass
class _Slot:
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    token_cache: Any = None
    http_cache: dict[Any, Any] = dataclasses.field(default_factory=dict)
    app: Any = None
    app_fingerprint: str | None = None
    session: Any = None
    last_token: str | None = None
    last_expires_on: int = 0
    token_requests: int = 0


_SLOTS: dict[tuple[str, ...], _Slot] = {}
_SLOTS_LOCK = threading.Lock()


def _slot(key: tuple[str, ...]) -> _Slot:
    with _SLOTS_LOCK:
        slot = _SLOTS.get(key)
        if slot is None:
            slot = _SLOTS[key] = _Slot()
        return slot


def clear_token_caches() -> None:
    """Forget every cached token and MSAL application in this process (for tests)."""
    with _SLOTS_LOCK:
        _SLOTS.clear()


def token_requests() -> int:
    """How many tokens this process obtained from an identity provider (not from cache)."""
    with _SLOTS_LOCK:
        return sum(slot.token_requests for slot in _SLOTS.values())


def check_ca_bundle(ca_bundle: str | None) -> str | None:
    """Return ``ca_bundle`` if it names a readable file (or is empty)."""
    if not ca_bundle:
        return None
    if not os.path.isfile(ca_bundle):
        msg = f"ca_bundle {ca_bundle!r} is not a file: expected the path of a PEM file with the CA certificates to trust."
        raise ConfigurationError(msg)
    return ca_bundle


class MsalCredential:
    """Base of the credentials: the shared slot, lazy MSAL app, token fetching and invalidation.

    Subclasses provide :meth:`_client_credential`, :meth:`_fingerprint` and :meth:`_secrets`.
    """

    kind = "credential"

    def __init__(
        self,
        *,
        tenant_id: str | None,
        client_id: str | None,
        cloud: Cloud | None = None,
        ca_bundle: str | None = None,
        timeout: tuple[float, float] = (10.0, 30.0),
    ) -> None:
        self.cloud = cloud or get_cloud("public")
        self.authority_host = require_https(self.cloud.authority_host, "authority host", allow_loopback_http=False)
        self.scope = self.cloud.scope
        self.tenant_id = tenant_id.strip() if tenant_id else None
        self.client_id = client_id.strip() if client_id else None
        self.ca_bundle = check_ca_bundle(ca_bundle)
        self.timeout = timeout

    @property
    def authority(self) -> str:
        """The Entra authority URL (host + tenant)."""
        return f"{self.authority_host}/{self.tenant_id}" if self.tenant_id else self.authority_host

    @property
    def _key(self) -> tuple[str, ...]:
        # The credential's fingerprint (a SHA-256 digest, never the secret) keeps a wrong or rotated secret
        # from reusing a token another credential of the same app obtained in this process.
        return (self.authority_host.lower(), (self.tenant_id or "").lower(), (self.client_id or "").lower(), self.scope,
                self._fingerprint())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"authority_host={self.authority_host!r})"
        )

    # --- to implement ---

    def _client_credential(self) -> Any:
        raise NotImplementedError

    def _fingerprint(self) -> str:
        raise NotImplementedError

    def _secrets(self) -> Iterable[str]:
        return ()

    # --- MSAL plumbing ---

    def _session(self, slot: _Slot) -> Any:
        if slot.session is None or slot.session.ca_bundle != self.ca_bundle:
            from pbi_taskflow.client.auth._http import TrustSession

            slot.session = TrustSession(self.ca_bundle, self.timeout)
        return slot.session

    def _build_app(self, slot: _Slot) -> Any:
        import msal

        return msal.ConfidentialClientApplication(
            self.client_id,
            client_credential=self._client_credential(),
            authority=self.authority,
            token_cache=slot.token_cache,
            http_client=self._session(slot),
            http_cache=slot.http_cache,
            instance_discovery=False if is_loopback(self.authority_host) else None,
        )

    def _acquire(self, app: Any) -> Any:
        return app.acquire_token_for_client(scopes=[self.scope])

    def _error(self, outcome: Any, slot: _Slot) -> PowerBIError:
        session = slot.session
        return error_from_msal(
            outcome,
            client_id=self.client_id,
            tenant_id=self.tenant_id,
            authority=self.authority,
            credential_kind=self.kind,
            secrets=self._secrets(),
            status=session.last_status if session is not None else None,
            retry_after=session.last_retry_after if session is not None else None,
        )

    def get_token(self) -> AccessToken:
        """A valid access token; at most one token request per key is in flight in this process.

        If a proactive renewal fails transiently while the cached token is still valid for a
        while, the cached token is returned (MSAL itself would raise).
        """
        slot = _slot(self._key)
        with slot.lock:
            if slot.token_cache is None:
                import msal

                slot.token_cache = msal.TokenCache()
            try:
                result = self._acquire(self._app(slot))
                if not isinstance(result, dict) or "access_token" not in result:
                    raise self._error(result if isinstance(result, dict) else {}, slot)
            except Exception as exc:
                # MSAL replays remembered error answers; make sure the next attempt reaches the server.
                slot.http_cache.clear()
                error = self._error(exc, slot)
                cached = self._still_valid(slot, error)
                if cached is not None:
                    return cached
                if error is exc:
                    raise
                raise error from exc
            if result.get("token_source") != "cache":
                slot.token_requests += 1
            token = str(result["access_token"])
            if token != slot.last_token:
                slot.last_token = token
                slot.last_expires_on = int(time.time()) + int(result.get("expires_in") or 0)
            return AccessToken(token, slot.last_expires_on)

    def _app(self, slot: _Slot) -> Any:
        fingerprint = f"{self._fingerprint()}|{self.ca_bundle}"
        if slot.app is None or slot.app_fingerprint != fingerprint:
            slot.app = None
            slot.app = self._build_app(slot)
            slot.app_fingerprint = fingerprint
        return slot.app

    @staticmethod
    def _still_valid(slot: _Slot, error: PowerBIError) -> AccessToken | None:
        from pbi_taskflow.client.retry import is_transient

        if slot.last_token and is_transient(error) and slot.last_expires_on - time.time() > STILL_VALID_MARGIN:
            log.warning("Renewing the access token failed (%s); using the cached token, still valid.", error)
            return AccessToken(slot.last_token, slot.last_expires_on)
        return None

    def invalidate(self, token: str) -> None:
        """Drop ``token`` from the shared cache if it is still the current one."""
        slot = _slot(self._key)
        with slot.lock:
            if slot.app is not None and slot.last_token == token:
                self._remove_tokens(slot.app)
                slot.last_token = None

    def _remove_tokens(self, app: Any) -> None:
        app.remove_tokens_for_client()
