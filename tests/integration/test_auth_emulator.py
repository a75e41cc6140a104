"""Real MSAL over TLS against the emulator: every credential kind, the shared cache and every AADSTS error."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import certifi
import pytest

from pbi_taskflow.client.auth import (
    CertificateCredential,
    ClientSecretCredential,
    FederatedCredential,
)
from pbi_taskflow.client.clouds import get_cloud
from pbi_taskflow.errors import (
    AuthenticationError,
    CertificateError,
    FederatedCredentialError,
    InvalidSecretError,
    SecretExpiredError,
    ServerError,
    ThrottledError,
    TransportError,
    UnknownClientError,
    UnknownTenantError,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cold_token_cache")]

ISSUER = "https://token.actions.example.test"
SUBJECT = "repo:acme/etl:ref:refs/heads/main"


def _cloud(emu):
    return get_cloud("public", authority_host=emu.authority_host, api_root=emu.api_root)


def _secret(emu, *, tenant=None, client=None, secret=None):
    return ClientSecretCredential(
        tenant or emu.tenant_id, client or emu.client_id, secret or emu.client_secret, cloud=_cloud(emu), ca_bundle=emu.ca_bundle
    )


def test_secret_credential_gets_a_token_despite_requests_ca_bundle(emulator, monkeypatch):
    """A client secret yields a token over TLS even with REQUESTS_CA_BUNDLE pointing at the system CAs."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # public CAs only, as in many containers
    token = _secret(emulator).get_token()
    assert token.token
    assert token.expires_on > 0
    assert emulator.count("token") == 1
    assert "***" in repr(token)
    assert token.token not in repr(token)


def test_twenty_threads_on_a_cold_cache_cause_one_token_request(emulator):
    """Concurrent callers on a cold cache coalesce into exactly one token request."""
    barrier = threading.Barrier(20)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        cred = _secret(emulator)  # a separate credential object per thread: the cache is per key
        barrier.wait(timeout=10)
        try:
            tokens.append(cred.get_token().token)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(tokens) == 20
    assert len(set(tokens)) == 1
    assert emulator.count("token") == 1


def test_cached_token_is_reused_until_invalidated(emulator):
    """A second get_token uses the cache; invalidate() forces exactly one new request."""
    cred = _secret(emulator)
    first = cred.get_token()
    assert _secret(emulator).get_token() == first
    assert emulator.count("token") == 1
    cred.invalidate("some-other-token")
    assert cred.get_token() == first
    cred.invalidate(first.token)
    assert cred.get_token().token != first.token
    assert emulator.count("token") == 2


def test_wrong_secret_never_reuses_a_token_cached_with_the_right_one(emulator):
    """After the right secret cached a token, a wrong secret for the same app in the same process is refused."""
    good = _secret(emulator).get_token()
    with pytest.raises(InvalidSecretError):
        _secret(emulator, secret="a-wrong-or-rotated-secret").get_token()
    assert _secret(emulator).get_token() == good
    assert emulator.count("token") == 2


def test_expired_secret_says_to_create_a_new_secret_or_use_a_certificate(emulator):
    """AADSTS7000222 becomes SecretExpiredError with an actionable message and a correlation id."""
    client = str(uuid.uuid4())
    emulator.add_app(client, secret="old-secret-value", secret_expired=True)
    with pytest.raises(SecretExpiredError) as info:
        _secret(emulator, client=client, secret="old-secret-value").get_token()
    text = str(info.value)
    assert "expired" in text
    assert "new secret" in text
    assert "certificate" in text
    assert info.value.code == "AADSTS7000222"
    assert info.value.request_id
    assert "old-secret-value" not in text


def test_invalid_secret_mentions_value_versus_secret_id_and_never_leaks_it(emulator, caplog):
    """AADSTS7000215 becomes InvalidSecretError; the wrong secret is absent from message and logs."""
    planted = "planted-Wrong~Secret-0123456789"
    caplog.set_level(logging.DEBUG)
    cred = _secret(emulator, secret=planted)
    with pytest.raises(InvalidSecretError) as info:
        cred.get_token()
    assert "Secret ID" in str(info.value)
    assert info.value.code == "AADSTS7000215"
    assert planted not in str(info.value)
    assert planted not in repr(info.value)
    assert planted not in repr(cred)
    assert planted not in caplog.text


def test_unknown_client_then_registered_reaches_the_server_again(emulator):
    """AADSTS700016 maps to UnknownClientError, and MSAL's remembered 400 is not replayed afterwards."""
    client = str(uuid.uuid4())
    cred = _secret(emulator, client=client, secret="s3cret-value")
    with pytest.raises(UnknownClientError, match="Application \\(client\\) ID"):
        cred.get_token()
    emulator.add_app(client, secret="s3cret-value")
    assert cred.get_token().token
    assert emulator.count("token") == 2


def test_unknown_tenant_becomes_unknown_tenant_error(emulator):
    """A tenant that OIDC discovery does not know becomes UnknownTenantError naming tenant_id."""
    with pytest.raises(UnknownTenantError, match="tenant_id") as info:
        _secret(emulator, tenant=str(uuid.uuid4())).get_token()
    assert info.value.code == "AADSTS90002"


def test_token_endpoint_outage_is_not_replayed_by_msal(emulator):
    """A 503 from Entra is a transient ServerError, and the next attempt reaches the server."""
    emulator.inject("token", "error", status=503)
    cred = _secret(emulator)
    with pytest.raises(ServerError):
        cred.get_token()
    assert cred.get_token().token
    assert emulator.count("token") == 2


def test_token_endpoint_throttling_becomes_throttled_error(emulator):
    """A 429 from Entra carries Retry-After, and the next attempt reaches the server."""
    emulator.inject("token", "throttle", retry_after=3)
    cred = _secret(emulator)
    with pytest.raises(ThrottledError) as info:
        cred.get_token()
    assert info.value.retry_after == 3.0
    assert cred.get_token().token


def _cert_app(emu):
    from pbi_taskflow.emulator import make_client_certificate

    cert = make_client_certificate()
    client = str(uuid.uuid4())
    emu.add_app(client, certificate_pem=cert.certificate_pem)
    return client, cert


def test_certificate_credential_sha256_with_x5c(emulator):
    """Without a thumbprint the certificate signs PS256 with x5t#S256 and x5c, and Entra accepts it."""
    client, cert = _cert_app(emulator)
    cred = CertificateCredential(emulator.tenant_id, client, certificate=cert.combined_pem, cloud=_cloud(emulator),
                                 ca_bundle=emulator.ca_bundle)
    assert cred.sha1_thumbprint == cert.thumbprint
    assert cred.get_token().token
    assert "PRIVATE KEY" not in repr(cred)


def test_certificate_credential_sha1_thumbprint_from_file(emulator, tmp_path):
    """A PEM file plus the SHA-1 thumbprint (legacy x5t) is accepted too."""
    client, cert = _cert_app(emulator)
    path = tmp_path / "app.pem"
    path.write_text(cert.combined_pem)
    cred = CertificateCredential(emulator.tenant_id, client, certificate_path=str(path), thumbprint=cert.thumbprint,
                                 send_certificate_chain=False, cloud=_cloud(emulator), ca_bundle=emulator.ca_bundle)
    assert cred.get_token().token


def test_unregistered_certificate_becomes_certificate_error(emulator):
    """A certificate the app does not know is rejected with CertificateError."""
    from pbi_taskflow.emulator import make_client_certificate

    client, _ = _cert_app(emulator)
    other = make_client_certificate("intruder")
    cred = CertificateCredential(emulator.tenant_id, client, certificate=other.combined_pem, cloud=_cloud(emulator),
                                 ca_bundle=emulator.ca_bundle)
    with pytest.raises(AuthenticationError) as info:
        cred.get_token()
    assert isinstance(info.value, CertificateError)
    assert "PRIVATE KEY" not in str(info.value)


def test_federated_credential_reads_the_token_file_on_every_request(emulator, tmp_path, caplog):
    """The assertion file is re-read for each token request; a rotated bad token fails with FederatedCredentialError."""
    caplog.set_level(logging.DEBUG)
    client = str(uuid.uuid4())
    emulator.add_app(client, federated=[{"issuer": ISSUER, "subject": SUBJECT}])
    emulator.token_lifetime = 120  # under MSAL's 5-minute rule: every get_token asks Entra
    token_file = tmp_path / "federated-token"
    good = emulator.issue_federated_token(subject=SUBJECT, issuer=ISSUER)
    token_file.write_text(good)
    cred = FederatedCredential(emulator.tenant_id, client, token_file=str(token_file), cloud=_cloud(emulator),
                               ca_bundle=emulator.ca_bundle)
    assert cred.get_token().token
    assert good not in caplog.text
    wrong = emulator.issue_federated_token(subject="repo:acme/other:ref:refs/heads/main", issuer=ISSUER)
    token_file.write_text(wrong)
    with pytest.raises(FederatedCredentialError) as info:
        cred.get_token()
    assert info.value.code == "AADSTS70021"
    assert "subject" in str(info.value)
    assert wrong not in str(info.value)
    assert wrong not in caplog.text
    assert emulator.count("token") == 2


def test_federated_credential_from_environment_and_callable(emulator, tmp_path, monkeypatch):
    """AZURE_FEDERATED_TOKEN_FILE is the default source; a callable works too."""
    client = str(uuid.uuid4())
    emulator.add_app(client, federated=[{"issuer": ISSUER, "subject": SUBJECT}])
    token_file = tmp_path / "azure-token"
    token_file.write_text(emulator.issue_federated_token(subject=SUBJECT, issuer=ISSUER))
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    cloud = _cloud(emulator)
    assert FederatedCredential(emulator.tenant_id, client, cloud=cloud, ca_bundle=emulator.ca_bundle).token_file == str(token_file)
    calls: list[int] = []

    def assertion() -> str:
        calls.append(1)
        return token_file.read_text()

    cred = FederatedCredential(emulator.tenant_id, client, assertion=assertion, cloud=cloud, ca_bundle=emulator.ca_bundle)
    assert cred.get_token().token
    assert calls == [1]


def test_refresh_in_renews_proactively_and_survives_an_outage(emulator):
    """After refresh_in the token is renewed early; if that renewal hits a 503 the still-valid token is used."""
    emulator.refresh_in = 1
    cred = _secret(emulator)
    first = cred.get_token()
    time.sleep(1.2)
    second = cred.get_token()
    assert second.token != first.token
    assert emulator.count("token") == 2
    time.sleep(1.2)
    emulator.inject("token", "error", status=503)
    assert cred.get_token().token == second.token
    assert emulator.count("token") == 3


def test_untrusted_authority_fails_fast_with_ca_bundle_advice(emulator, monkeypatch):
    """Without the emulator's CA the token request fails once (not retried) and says to set ca_bundle."""
    from pbi_taskflow.client.retry import is_transient

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # public CAs only, as in many containers
    cred = ClientSecretCredential(emulator.tenant_id, emulator.client_id, emulator.client_secret, cloud=_cloud(emulator))
    with pytest.raises(TransportError) as info:
        cred.get_token()
    assert "ca_bundle" in str(info.value)
    assert not is_transient(info.value)
    assert emulator.client_secret not in str(info.value)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [pytest.param("error", ServerError, id="discovery-503"), pytest.param("throttle", ThrottledError, id="discovery-429")],
)
def test_discovery_outage_is_transient_not_an_unknown_tenant(emulator, fault, expected):
    """A failing OIDC discovery is a transient error (not 'unknown tenant'), and the next attempt succeeds."""
    emulator.inject("discovery", fault)
    cred = _secret(emulator)
    with pytest.raises(expected):
        cred.get_token()
    assert cred.get_token().token
    assert emulator.count("discovery") == 2
