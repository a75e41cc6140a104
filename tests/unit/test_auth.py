"""Unit tests for the credentials: construction, reprs, certificate loading and MSAL error mapping."""

from __future__ import annotations

import pickle
import sys
import threading

import pytest
from _pbi_certs import self_signed

from pbi_taskflow.client import auth
from pbi_taskflow.client.auth import (
    AccessToken,
    CertificateCredential,
    ClientSecretCredential,
    Credential,
    FederatedCredential,
    ManagedIdentityCredential,
    error_from_msal,
)
from pbi_taskflow.client.clouds import get_cloud
from pbi_taskflow.client.retry import is_transient
from pbi_taskflow.errors import (
    AuthenticationError,
    CertificateError,
    ConfigurationError,
    FederatedCredentialError,
    InvalidSecretError,
    SecretExpiredError,
    ServerError,
    ThrottledError,
    TransportError,
    UnknownClientError,
    UnknownTenantError,
)

TENANT = "5a061bcf-d29a-4132-9c12-998b57433899"
CLIENT = "41154af5-3761-4a5e-9fc0-7bbee6062cbc"
SECRET = "planted-Secret~Value-0123456789"


@pytest.fixture(autouse=True)
def _cold_cache():
    """Each test starts without cached MSAL apps."""
    auth.clear_token_caches()
    yield
    auth.clear_token_caches()


def _aad(code: int, error: str = "invalid_client") -> dict[str, object]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: something happened.\r\nTrace ID: t\r\nCorrelation ID: corr-1",
        "error_codes": [code],
        "correlation_id": "corr-1",
    }


def _map(outcome, **kw):
    kw.setdefault("client_id", CLIENT)
    kw.setdefault("tenant_id", TENANT)
    return error_from_msal(outcome, authority=f"https://login.microsoftonline.com/{TENANT}", credential_kind="client secret", **kw)


@pytest.mark.parametrize(
    ("code", "error", "expected", "needle"),
    [
        pytest.param(7000222, "invalid_client", SecretExpiredError, "new secret", id="expired"),
        pytest.param(7000215, "invalid_client", InvalidSecretError, "Secret ID", id="invalid"),
        pytest.param(700016, "unauthorized_client", UnknownClientError, "Application (client) ID", id="unknown-client"),
        pytest.param(90002, "invalid_tenant", UnknownTenantError, "tenant_id", id="unknown-tenant"),
        pytest.param(70021, "invalid_request", FederatedCredentialError, "case-sensitive", id="fic-70021"),
        pytest.param(700213, "invalid_request", FederatedCredentialError, "subject", id="fic-700213"),
        pytest.param(7002138, "invalid_request", FederatedCredentialError, "issuer", id="fic-7002138"),
        pytest.param(700027, "invalid_client", CertificateError, "certificate", id="cert-signature"),
        pytest.param(1002012, "invalid_scope", AuthenticationError, "scope", id="scope"),
    ],
)
def test_aadsts_codes_map_to_typed_errors(code, error, expected, needle):
    """Each AADSTS code becomes its own exception with an actionable message and the correlation id."""
    exc = _map(_aad(code, error))
    assert type(exc) is expected
    assert needle in str(exc)
    assert exc.code == f"AADSTS{code}"
    assert exc.request_id == "corr-1"
    assert pickle.loads(pickle.dumps(exc)).code == exc.code


def test_secrets_are_scrubbed_from_entra_descriptions():
    """A secret echoed in an error description never reaches the message."""
    outcome = {"error": "invalid_client", "error_description": f"AADSTS7000215: bad {SECRET}", "error_codes": [7000215]}
    assert SECRET not in str(_map(outcome, secrets=[SECRET]))


def test_status_decides_throttling_and_server_errors():
    """A 429 answer is throttling (with Retry-After) and a 5xx is a transient server error."""
    throttled = _map({"error": "temporarily_unavailable"}, status=429, retry_after="4")
    assert isinstance(throttled, ThrottledError)
    assert throttled.retry_after == 4.0
    assert isinstance(_map({"error": "server_error"}, status=503), ServerError)


def test_exceptions_from_msal_are_mapped():
    """MsalServiceError, connection errors and discovery ValueErrors become typed errors."""
    import requests

    class MsalServiceError(Exception):
        pass

    assert isinstance(_map(MsalServiceError("HTTP Error: 503")), ServerError)
    assert _map(MsalServiceError("HTTP Error: 502")).status == 502
    assert isinstance(_map(requests.ConnectionError("refused")), TransportError)
    ssl = _map(requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))
    assert isinstance(ssl, TransportError)
    assert "ca_bundle" in str(ssl)
    assert not is_transient(ssl)
    tenant = _map(ValueError("Unable to get authority configuration for https://x/t"))
    assert isinstance(tenant, UnknownTenantError)


def test_powerbi_errors_pass_through_unchanged():
    """An error raised by our own assertion callable is not re-wrapped."""
    original = FederatedCredentialError("empty token")
    assert _map(original) is original


def test_credential_reprs_hide_secrets_and_satisfy_the_protocol(tmp_path):
    """No credential repr shows secrets, keys or assertions; all satisfy Credential."""
    key_pem, cert_pem = self_signed()
    token_file = tmp_path / "t"
    token_file.write_text("header.payload.signature")
    creds = [
        ClientSecretCredential(TENANT, CLIENT, SECRET),
        CertificateCredential(TENANT, CLIENT, certificate=key_pem + cert_pem),
        FederatedCredential(TENANT, CLIENT, token_file=str(token_file)),
        ManagedIdentityCredential(CLIENT),
    ]
    for cred in creds:
        text = repr(cred)
        assert SECRET not in text
        assert "PRIVATE KEY" not in text
        assert "payload" not in text
        assert isinstance(cred, Credential)
    assert repr(AccessToken("tok-123", 5)) == "AccessToken(token='***', expires_on=5)"


def test_construction_does_no_io_and_imports_no_msal(monkeypatch):
    """Building a credential neither imports msal nor contacts anything."""
    monkeypatch.delitem(sys.modules, "msal", raising=False)
    ClientSecretCredential(TENANT, CLIENT, SECRET)
    assert "msal" not in sys.modules


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        pytest.param({"tenant_id": "", "client_id": CLIENT, "client_secret": SECRET}, "tenant_id", id="tenant"),
        pytest.param({"tenant_id": TENANT, "client_id": " ", "client_secret": SECRET}, "client_id", id="client"),
        pytest.param({"tenant_id": TENANT, "client_id": CLIENT, "client_secret": ""}, "secret", id="secret"),
    ],
)
def test_secret_credential_validates_input(kwargs, needle):
    """Missing ids or secret are configuration errors naming the field."""
    with pytest.raises(ConfigurationError, match=needle):
        ClientSecretCredential(**kwargs)


def test_plain_http_authority_is_refused():
    """MSAL needs https; a plain-http authority is refused up front."""
    with pytest.raises(ConfigurationError, match="https"):
        ClientSecretCredential(TENANT, CLIENT, SECRET, cloud=get_cloud("public", authority_host="http://login.example.com"))


def test_missing_ca_bundle_file_is_reported():
    """A ca_bundle path that is not a file is a clear configuration error."""
    with pytest.raises(ConfigurationError, match="ca_bundle"):
        ClientSecretCredential(TENANT, CLIENT, SECRET, ca_bundle="/nonexistent/ca.pem")


def test_certificate_thumbprints_are_derived_and_modes_chosen():
    """Without a thumbprint, MSAL gets public_certificate (SHA-256/x5c); with one, the SHA-1 thumbprint."""
    key_pem, cert_pem = self_signed()
    cred = CertificateCredential(TENANT, CLIENT, certificate=key_pem + cert_pem)
    assert len(cred.sha1_thumbprint) == 40
    assert len(cred.sha256_thumbprint) == 64
    sha256 = cred._client_credential()
    assert "thumbprint" not in sha256
    assert sha256["public_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    spaced = ":".join(cred.sha1_thumbprint[i : i + 2] for i in range(0, 40, 2)).lower()
    legacy = CertificateCredential(TENANT, CLIENT, certificate=key_pem + cert_pem, thumbprint=spaced,
                                   send_certificate_chain=False)._client_credential()
    assert legacy["thumbprint"] == cred.sha1_thumbprint
    assert "public_certificate" not in legacy


def test_encrypted_key_needs_the_right_password():
    """An encrypted key loads with its password and fails clearly without it."""
    key_pem, cert_pem = self_signed(b"pw-123")
    CertificateCredential(TENANT, CLIENT, certificate=key_pem + cert_pem, password="pw-123")
    with pytest.raises(CertificateError, match="certificate_password"):
        CertificateCredential(TENANT, CLIENT, certificate=key_pem + cert_pem)
    with pytest.raises(CertificateError, match="certificate_password") as info:
        CertificateCredential(TENANT, CLIENT, certificate=key_pem + cert_pem, password="wrong")
    assert "pw-123" not in str(info.value)


@pytest.mark.parametrize(
    ("pem", "needle"),
    [
        pytest.param("cert-only", "no PEM private key", id="no-key"),
        pytest.param("key-only", "no PEM certificate", id="no-cert"),
        pytest.param("mismatch", "matches its private key", id="mismatch"),
    ],
)
def test_bad_certificate_pem_is_explained(pem, needle):
    """A PEM without key, without certificate, or with a foreign certificate is rejected."""
    key_pem, cert_pem = self_signed()
    other_key, _ = self_signed()
    data = {"cert-only": cert_pem, "key-only": key_pem, "mismatch": other_key + cert_pem}[pem]
    with pytest.raises(CertificateError, match=needle):
        CertificateCredential(TENANT, CLIENT, certificate=data)


def test_wrong_thumbprint_and_missing_file_are_configuration_errors(tmp_path):
    """A thumbprint that does not match, or an unreadable path, is reported before any token request."""
    key_pem, cert_pem = self_signed()
    with pytest.raises(ConfigurationError, match="does not match"):
        CertificateCredential(TENANT, CLIENT, certificate=key_pem + cert_pem, thumbprint="AB" * 20)
    with pytest.raises(ConfigurationError, match="Cannot read certificate_path"):
        CertificateCredential(TENANT, CLIENT, certificate_path=str(tmp_path / "missing.pem"))


def test_federated_credential_needs_a_source_and_a_token(tmp_path, monkeypatch):
    """Without file, environment variable or callable it is a configuration error; an empty file is rejected."""
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    with pytest.raises(ConfigurationError, match="AZURE_FEDERATED_TOKEN_FILE"):
        FederatedCredential(TENANT, CLIENT)
    empty = tmp_path / "empty"
    empty.write_text("  ")
    with pytest.raises(FederatedCredentialError, match="empty"):
        FederatedCredential(TENANT, CLIENT, token_file=str(empty)).read_assertion()
    with pytest.raises(FederatedCredentialError, match="Cannot read"):
        FederatedCredential(TENANT, CLIENT, token_file=str(tmp_path / "nope")).read_assertion()


def test_managed_identity_uses_msal_managed_identity_client(mocker):
    """Managed identity builds msal.ManagedIdentityClient lazily and asks for the Power BI resource."""
    import msal

    client = mocker.MagicMock()
    client.acquire_token_for_client.return_value = {"access_token": "mi-token", "expires_in": 3600, "token_source": "identity_provider"}
    factory = mocker.patch.object(msal, "ManagedIdentityClient", return_value=client)
    cred = ManagedIdentityCredential(CLIENT)
    assert factory.call_count == 0
    assert cred.get_token().token == "mi-token"
    identity = factory.call_args.args[0]
    assert isinstance(identity, msal.UserAssignedManagedIdentity)
    client.acquire_token_for_client.assert_called_once_with(resource="https://analysis.windows.net/powerbi/api")
    assert isinstance(ManagedIdentityCredential()._client_credential(), msal.SystemAssignedManagedIdentity)


def test_managed_identity_errors_are_mapped(mocker):
    """An MSAL error dict from the identity endpoint becomes an AuthenticationError."""
    import msal

    client = mocker.MagicMock()
    client.acquire_token_for_client.return_value = {"error": "invalid_request", "error_description": "Identity not found"}
    mocker.patch.object(msal, "ManagedIdentityClient", return_value=client)
    with pytest.raises(AuthenticationError, match="managed identity"):
        ManagedIdentityCredential().get_token()


def test_concurrent_cold_callers_build_one_app_and_make_one_request(mocker):
    """The per-key lock coalesces concurrent first calls into one app and one token request."""
    import msal

    app = mocker.MagicMock()
    calls = []

    def acquire(scopes):
        calls.append(scopes)
        source = "identity_provider" if len(calls) == 1 else "cache"
        return {"access_token": "t", "expires_in": 3600, "token_source": source}

    app.acquire_token_for_client.side_effect = acquire
    factory = mocker.patch.object(msal, "ConfidentialClientApplication", return_value=app)
    barrier = threading.Barrier(10)

    def worker():
        barrier.wait(timeout=5)
        ClientSecretCredential(TENANT, CLIENT, SECRET).get_token()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert factory.call_count == 1
    assert auth.token_requests() == 1

