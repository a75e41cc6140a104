"""Emulated Entra ID: OIDC discovery and the client-credentials token endpoint (secret, certificate, federated)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hmac
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pbi_taskflow.emulator.state import check_guid
from pbi_taskflow.emulator.wire import Request, Response, json_response

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
POWERBI_RESOURCE = "https://analysis.windows.net/powerbi/api"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


@dataclasses.dataclass
class AppSecret:
    value: str
    expired: bool = False


@dataclasses.dataclass
class AppCertificate:
    der: bytes
    public_key: Any

    @classmethod
    def from_pem(cls, pem: str | bytes) -> AppCertificate:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        start = data.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0:
            msg = "certificate_pem holds no '-----BEGIN CERTIFICATE-----' block; pass the app's public certificate."
            raise ValueError(msg)
        cert = x509.load_pem_x509_certificate(data[start:])
        return cls(der=cert.public_bytes(serialization.Encoding.DER), public_key=cert.public_key())

    def matches(self, header: dict[str, Any]) -> bool:
        if header.get("x5c"):
            try:
                return base64.b64decode("".join(str(header["x5c"][0]).split())) == self.der
            except (binascii.Error, ValueError):
                return False
        if "x5t#S256" in header:
            return _b64url_decode(str(header["x5t#S256"])) == _digest(hashes.SHA256(), self.der)
        if "x5t" in header:
            return _b64url_decode(str(header["x5t"])) == _digest(hashes.SHA1(), self.der)
        return False


@dataclasses.dataclass
class App:
    """An app registration (service principal) in one tenant."""

    client_id: str
    tenant_id: str
    secrets: list[AppSecret] = dataclasses.field(default_factory=list)
    certificates: list[AppCertificate] = dataclasses.field(default_factory=list)
    federated: list[dict[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class IssuedToken:
    client_id: str
    tenant_id: str
    expires_at: float
    serial: int


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def _basic_credentials(request: Request) -> dict[str, str]:
    """``client_id``/``client_secret`` from an HTTP Basic header (client_secret_basic), if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return {}
    try:
        user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return {}
    return {"client_id": urllib.parse.unquote_plus(user), "client_secret": urllib.parse.unquote_plus(password)}


class AssertionRejected(Exception):
    """A client assertion failed validation; carries the AADSTS answer."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.code, self.message = status, error, code, message


class TokenStore:
    """Access tokens issued by the emulator, their expiry, and the "expire everything so far" switch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}
        self._serial = 0
        self._expired_up_to = 0

    def add(self, token: str, client_id: str, tenant_id: str, lifetime: float) -> None:
        with self._lock:
            self._serial += 1
            self._tokens[token] = IssuedToken(client_id, tenant_id, time.time() + lifetime, self._serial)

    def check(self, token: str) -> str:
        """``"valid"``, ``"expired"`` or ``"unknown"``."""
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None:
                return "unknown"
            if issued.serial <= self._expired_up_to or time.time() >= issued.expires_at:
                return "expired"
            return "valid"

    def client_of(self, token: str) -> str | None:
        """The client id a token was issued to (``None`` when unknown)."""
        with self._lock:
            issued = self._tokens.get(token)
            return issued.client_id if issued else None

    def issued(self) -> list[str]:
        """Every access token issued so far."""
        with self._lock:
            return list(self._tokens)

    def expire_all(self) -> None:
        with self._lock:
            self._expired_up_to = self._serial

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)


def aad_error(status: int, error: str, code: int, message: str, correlation_id: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
    """An Entra ID error answer in the documented shape (``error``, ``error_description`` with AADSTS…)."""
    trace_id, correlation = str(uuid.uuid4()), correlation_id or str(uuid.uuid4())
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    description = (f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation}\r\n"
                   f"Timestamp: {stamp}")
    payload = {"error": error, "error_description": description, "error_codes": [code], "timestamp": stamp,
               "trace_id": trace_id, "correlation_id": correlation,
               "error_uri": f"https://login.microsoftonline.com/error?code={code}"}
    return json_response(status, payload, {"x-ms-request-id": trace_id, "client-request-id": correlation,
                                           **(headers or {})})


class Entra:
    """Tenants, app registrations and the token protocol.

    :param base_url: returns the emulator's base URL (``https://127.0.0.1:PORT``).
    :param tokens: where issued access tokens are recorded.
    """

    def __init__(self, base_url: Callable[[], str], tokens: TokenStore) -> None:
        self._base_url = base_url
        self.tokens = tokens
        self.lock = threading.RLock()
        self.tenants: set[str] = set()
        self.apps: dict[str, App] = {}
        self.token_lifetime: float = 3599
        self.refresh_in: float | None = None
        self._issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._issuer_kid = secrets.token_hex(8)

    # --- registrations -------------------------------------------------------------------------

    def add_app(self, client_id: str, tenant_id: str, *, secret: str | None = None, secret_expired: bool = False,
                certificate_pem: str | bytes | None = None,
                federated: list[dict[str, str]] | None = None) -> App:
        check_guid(client_id, "client_id")
        check_guid(tenant_id, "tenant_id")
        with self.lock:
            self.tenants.add(tenant_id.lower())
            app = self.apps.get(client_id.lower())
            if app is None or app.tenant_id != tenant_id.lower():
                app = App(client_id=client_id.lower(), tenant_id=tenant_id.lower())
                self.apps[app.client_id] = app
            if secret is not None:
                app.secrets.append(AppSecret(secret, secret_expired))
            if certificate_pem is not None:
                app.certificates.append(AppCertificate.from_pem(certificate_pem))
            for fic in federated or ():
                missing = {"issuer", "subject"} - set(fic)
                if missing:
                    msg = f"A federated credential needs 'issuer' and 'subject' (and optionally 'audience'); " \
                          f"missing {sorted(missing)}."
                    raise ValueError(msg)
                app.federated.append({"issuer": fic["issuer"], "subject": fic["subject"],
                                      "audience": fic.get("audience", FEDERATED_AUDIENCE)})
            return app

    def issue_federated_token(self, *, subject: str, issuer: str, audience: str = FEDERATED_AUDIENCE,
                              lifetime: float = 600) -> str:
        """A JWT from the emulated external identity provider (what a workload writes to its token file)."""
        now = int(time.time())
        claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now,
                  "exp": now + int(lifetime), "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._issuer_key, algorithm="RS256", headers={"kid": self._issuer_kid})

    # --- endpoints -----------------------------------------------------------------------------

    def _known_tenant(self, tenant: str) -> bool:
        with self.lock:
            return tenant.lower() in self.tenants

    def token_endpoint(self, tenant: str) -> str:
        return f"{self._base_url()}/{tenant}/oauth2/v2.0/token"

    def discovery(self, request: Request, tenant: str) -> Response:
        """``GET /{tenant}/v2.0/.well-known/openid-configuration``."""
        if not self._known_tenant(tenant):
            return aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you "
                             "have the correct tenant ID and are signing into the correct cloud.",
                             request.headers.get("client-request-id"))
        base = f"{self._base_url()}/{tenant}"
        return json_response(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        })

    def keys(self, request: Request, tenant: str) -> Response:
        """``GET /{tenant}/discovery/v2.0/keys``: the key that signs access tokens and federated test tokens."""
        if not self._known_tenant(tenant):
            return aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.",
                             request.headers.get("client-request-id"))
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._issuer_key.public_key()))
        return json_response(200, {"keys": [{**jwk, "kid": self._issuer_kid, "use": "sig", "alg": "RS256"}]})

    def token(self, request: Request, tenant: str) -> Response:
        """``POST /{tenant}/oauth2/v2.0/token`` (client credentials grant)."""
        form = {**_basic_credentials(request), **request.form()}
        corr = request.headers.get("client-request-id")
        if not self._known_tenant(tenant):
            return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure you "
                             "have the correct tenant ID and are signing into the correct cloud.", corr)
        if form.get("grant_type") != "client_credentials":
            return aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type "
                             f"{form.get('grant_type')!r}; the emulator supports 'client_credentials' only.", corr)
        client_id = form.get("client_id", "")
        with self.lock:
            app = self.apps.get(client_id.lower())
        if app is None or app.tenant_id != tenant.lower():
            return aad_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was "
                             f"not found in the directory '{tenant}'. This can happen if the application has not "
                             "been installed by the administrator of the tenant or consented to by any user in the "
                             "tenant. You may have sent your authentication request to the wrong tenant.", corr)
        scope_error = self._check_scope(form.get("scope", ""), corr)
        if scope_error is not None:
            return scope_error
        if "client_secret" in form:
            failure = self._check_secret(app, form["client_secret"], corr)
            if failure is not None:
                return failure
        elif "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER:
                return aad_error(400, "invalid_request", 50027, f"client_assertion_type must be '{JWT_BEARER}'.",
                                 corr)
            try:
                self._check_assertion(app, form["client_assertion"], self.token_endpoint(tenant))
            except AssertionRejected as exc:
                return aad_error(exc.status, exc.error, exc.code, exc.message, corr)
        else:
            return aad_error(401, "invalid_client", 7000218, "The request body must contain the following "
                             "parameter: 'client_assertion' or 'client_secret'.", corr)
        return self._issue(app, corr)

    # --- validation ----------------------------------------------------------------------------

    @staticmethod
    def _check_scope(scope: str, corr: str | None) -> Response | None:
        if not scope.endswith("/.default") or " " in scope.strip():
            return aad_error(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. "
                             "Client credential flows must have a scope value with /.default suffixed to the "
                             "resource identifier (application ID URI).", corr)
        resource = scope[: -len("/.default")].rstrip("/")
        if resource.lower() != POWERBI_RESOURCE:
            return aad_error(400, "invalid_resource", 500011, f"The resource principal named {resource} was not "
                             "found in the tenant. The emulator serves Power BI tokens only "
                             f"(scope {POWERBI_RESOURCE}/.default).", corr)
        return None

    @staticmethod
    def _check_secret(app: App, value: str, corr: str | None) -> Response | None:
        for candidate in app.secrets:
            if hmac.compare_digest(candidate.value.encode("utf-8"), value.encode("utf-8")):
                if candidate.expired:
                    return aad_error(401, "invalid_client", 7000222, "The provided client secret keys for app "
                                     f"'{app.client_id}' are expired. Visit the Azure portal to create new keys for "
                                     "your app, or consider using certificate credentials for added security.", corr)
                return None
        return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                         f"sent in the request is the client secret value, not the client secret ID, for a secret "
                         f"added to app '{app.client_id}'.", corr)

    def _check_assertion(self, app: App, assertion: str, endpoint: str) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise AssertionRejected(401, "invalid_client", 50027, f"Invalid JWT token: {exc}.") from None
        if any(k in header for k in ("x5c", "x5t", "x5t#S256")):
            self._check_certificate_assertion(app, assertion, header, endpoint)
        else:
            self._check_federated_assertion(app, assertion)

    def _check_certificate_assertion(self, app: App, assertion: str, header: dict[str, Any], endpoint: str) -> None:
        cert = next((c for c in app.certificates if c.matches(header)), None)
        if cert is None:
            raise AssertionRejected(401, "invalid_client", 700027, "The certificate with identifier used to sign the "
                                    f"client assertion is not registered on application {app.client_id}. [Reason - "
                                    "The key was not found.]")
        try:
            claims = jwt.decode(assertion, cert.public_key, algorithms=["RS256", "PS256"], audience=endpoint,
                                options={"require": ["exp", "aud", "iss", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AssertionRejected(401, "invalid_client", 700024, "Client assertion is not within its valid "
                                    "time range.") from None
        except jwt.InvalidAudienceError:
            raise AssertionRejected(401, "invalid_client", 700027, "Client assertion contains an invalid audience; "
                                    f"expected the token endpoint {endpoint}.") from None
        except jwt.PyJWTError as exc:
            raise AssertionRejected(401, "invalid_client", 700027, "Client assertion failed signature "
                                    f"validation. [Reason - {exc}]") from None
        if str(claims.get("iss", "")).lower() != app.client_id or str(claims.get("sub", "")).lower() != app.client_id:
            raise AssertionRejected(401, "invalid_client", 700023, "Client assertion 'iss' and 'sub' must both be "
                                    f"the client id {app.client_id}.")

    def _check_federated_assertion(self, app: App, assertion: str) -> None:
        try:
            claims = jwt.decode(assertion, self._issuer_key.public_key(), algorithms=["RS256"],
                                options={"verify_aud": False, "require": ["exp", "iss", "sub", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AssertionRejected(401, "invalid_client", 700024, "Client assertion is not within its valid "
                                    "time range.") from None
        except jwt.PyJWTError as exc:
            raise AssertionRejected(401, "invalid_client", 700027, "Client assertion failed signature "
                                    f"validation. [Reason - {exc}]") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        for fic in app.federated:
            if fic["issuer"] == claims["iss"] and fic["subject"] == claims["sub"] and fic["audience"] in audiences:
                return
        raise AssertionRejected(400, "invalid_request", 70021, "No matching federated identity record found for "
                                f"presented assertion. Assertion Issuer: '{claims['iss']}'. Assertion Subject: "
                                f"'{claims['sub']}'. Assertion Audience: '{', '.join(map(str, audiences))}'.")

    def _issue(self, app: App, corr: str | None) -> Response:
        lifetime = float(self.token_lifetime)
        now = int(time.time())
        claims = {"aud": POWERBI_RESOURCE, "iss": f"https://sts.windows.net/{app.tenant_id}/", "iat": now,
                  "nbf": now, "exp": now + int(lifetime), "appid": app.client_id, "tid": app.tenant_id,
                  "oid": str(uuid.uuid5(uuid.NAMESPACE_OID, app.client_id)), "uti": secrets.token_urlsafe(16)}
        token = jwt.encode(claims, self._issuer_key, algorithm="RS256", headers={"kid": self._issuer_kid})
        self.tokens.add(token, app.client_id, app.tenant_id, lifetime)
        payload: dict[str, Any] = {"token_type": "Bearer", "expires_in": int(lifetime),
                                   "ext_expires_in": int(lifetime), "access_token": token}
        if self.refresh_in is not None:
            payload["refresh_in"] = int(self.refresh_in)
        headers = {"client-request-id": corr} if corr else {}
        return json_response(200, payload, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", **headers})
