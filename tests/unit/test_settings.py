"""Unit tests for ConnectionSettings: parsing, validation and secret-safe repr."""

from __future__ import annotations

import pytest

from pbi_taskflow.client.auth import (
    CertificateCredential,
    ClientSecretCredential,
    FederatedCredential,
    ManagedIdentityCredential,
)
from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.errors import ConfigurationError

TENANT = "5a061bcf-d29a-4132-9c12-998b57433899"
CLIENT = "41154af5-3761-4a5e-9fc0-7bbee6062cbc"
SECRET = "planted-Secret-Value~123"


def test_airflow_shape_with_prefixed_extras():
    """login/password/extra (dict or JSON, prefixed or not) are all accepted."""
    s = ConnectionSettings.from_mapping(
        {
            "login": CLIENT,
            "password": SECRET,
            "extra": f'{{"extra__pbi_taskflow__tenant_id": "{TENANT}", "cloud": "usgov", "allowed_workspaces": "A, B"}}',
        },
        conn_id="pbi",
    )
    assert (s.tenant_id, s.client_id, s.client_secret) == (TENANT, CLIENT, SECRET)
    assert s.cloud.api_root == "https://api.powerbigov.us/v1.0/myorg"
    assert s.allowed_workspaces == ("A", "B")
    assert s.conn_id == "pbi"


def test_flat_keys_and_overrides():
    """Flat keys work and authority/api overrides land in the cloud."""
    s = ConnectionSettings.from_mapping(
        {"tenant_id": "contoso.onmicrosoft.com", "client_id": CLIENT, "client_secret": SECRET,
         "authority_host": "https://127.0.0.1:8443", "api_root": "https://127.0.0.1:8443", "timeout": "30",
         "allowed_workspaces": ["X"]}
    )
    assert s.cloud.authority_host == "https://127.0.0.1:8443"
    assert s.cloud.api_root == "https://127.0.0.1:8443/v1.0/myorg"
    assert s.timeout == 30.0
    assert s.allowed_workspaces == ("X",)


def test_repr_hides_secrets():
    """Secrets never appear in the repr."""
    s = ConnectionSettings.from_mapping({"login": CLIENT, "password": SECRET, "extra": {"tenant_id": TENANT}})
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert s.secrets() == (SECRET,)


@pytest.mark.parametrize(
    ("mapping", "needle"),
    [
        pytest.param({"login": CLIENT, "password": SECRET}, "Missing tenant_id", id="no-tenant"),
        pytest.param({"password": SECRET, "extra": {"tenant_id": TENANT}}, "Missing client id", id="no-client"),
        pytest.param({"login": CLIENT, "extra": {"tenant_id": TENANT}}, "Missing client secret", id="no-secret"),
        pytest.param({"login": CLIENT, "password": SECRET, "extra": {"tenant_id": "not a tenant"}}, "Invalid tenant_id", id="bad-tenant"),
        pytest.param({"login": "abc", "password": SECRET, "extra": {"tenant_id": TENANT}}, "Invalid client id", id="bad-client"),
        pytest.param({"login": CLIENT, "password": SECRET, "extra": {"tenant_id": TENANT, "auth_method": "kerberos"}}, "Unknown auth_method", id="bad-method"),
        pytest.param({"login": CLIENT, "extra": {"tenant_id": TENANT, "auth_method": "certificate"}}, "Missing certificate", id="no-cert"),
        pytest.param({"login": CLIENT, "password": SECRET, "extra": {"tenant_id": TENANT, "cloud": "mars"}}, "Unknown Power BI cloud", id="bad-cloud"),
        pytest.param({"login": CLIENT, "password": SECRET, "extra": {"tenant_id": TENANT, "timeout": "soon"}}, "Invalid timeout", id="bad-timeout"),
        pytest.param({"login": CLIENT, "password": SECRET, "extra": "{not json"}, "not valid JSON", id="bad-extra"),
        pytest.param({"login": CLIENT, "password": SECRET, "extra": {"tenant_id": TENANT, "allowed_workspaces": 5}}, "Invalid allowed_workspaces", id="bad-allow"),
    ],
)
def test_validation_errors_name_the_field(mapping, needle):
    """Each bad input names the field and what is expected."""
    with pytest.raises(ConfigurationError, match=needle) as info:
        ConnectionSettings.from_mapping(mapping)
    assert SECRET not in str(info.value)


def test_all_field_problems_are_reported_together():
    """Every wrong field is named in one ConfigurationError, each also listed in ``.problems``."""
    mapping = {"login": "abc", "extra": {"tenant_id": "not a tenant", "timeout": 0,
                                         "api_root": "http://api.powerbi.com/v1.0/myorg"}}
    with pytest.raises(ConfigurationError) as info:
        ConnectionSettings.from_mapping(mapping, conn_id="pbi")
    problems = info.value.problems  # type: ignore[attr-defined]
    assert [p.split(" ")[0:2] for p in problems] == [
        ["Invalid", "tenant_id"], ["Invalid", "client"], ["Missing", "client"], ["Invalid", "timeout"],
        ["Refusing", "plain-http"],
    ]
    assert str(info.value).startswith("Connection 'pbi' has 5 problems:")
    assert all(p in str(info.value) for p in problems)


def test_build_credential_per_method(tmp_path, monkeypatch):
    """Each auth_method builds its credential without network I/O."""
    base = {"login": CLIENT, "extra": {"tenant_id": TENANT}}
    s = ConnectionSettings.from_mapping({**base, "password": SECRET})
    assert isinstance(s.build_credential(), ClientSecretCredential)
    token = tmp_path / "token"
    token.write_text("jwt")
    s = ConnectionSettings.from_mapping({**base, "extra": {"tenant_id": TENANT, "auth_method": "federated", "federated_token_file": str(token)}})
    assert isinstance(s.build_credential(), FederatedCredential)
    s = ConnectionSettings.from_mapping({"extra": {"auth_method": "managed_identity", "managed_identity_client_id": CLIENT}})
    cred = s.build_credential()
    assert isinstance(cred, ManagedIdentityCredential)
    assert cred.client_id == CLIENT


def test_build_certificate_credential(tmp_path):
    """auth_method=certificate loads the PEM file."""
    from _pbi_certs import self_signed

    key_pem, cert_pem = self_signed()
    path = tmp_path / "cert.pem"
    path.write_text(key_pem + cert_pem)
    s = ConnectionSettings.from_mapping(
        {"login": CLIENT, "extra": {"tenant_id": TENANT, "auth_method": "certificate", "certificate_path": str(path)}}
    )
    assert isinstance(s.build_credential(), CertificateCredential)


def test_build_client_carries_allow_list_timeout_and_conn_id():
    """build_client passes the connection's settings to the client."""
    s = ConnectionSettings.from_mapping(
        {"login": CLIENT, "password": SECRET, "extra": {"tenant_id": TENANT, "allowed_workspaces": "Sales", "timeout": 45}},
        conn_id="pbi",
    )
    client = s.build_client()
    assert client.allowed_workspaces == ("Sales",)
    assert client.timeout == (10.0, 45.0)
    assert client.conn_id == "pbi"
    assert SECRET not in repr(client)


@pytest.mark.parametrize("field", ["api_root", "authority_host"])
@pytest.mark.parametrize("host", ["127.0.0.1:8443", "localhost:8443", "[::1]:8443"])
def test_plain_http_on_loopback_is_refused_up_front(field, host):
    """http:// on loopback is refused like any plain http, naming the https URL to use, instead of being accepted
    and then failing every call slowly against a server that speaks TLS only (the emulator, Power BI, Entra ID)."""
    path = "/v1.0/myorg" if field == "api_root" else ""
    mapping = {"login": CLIENT, "password": SECRET, "extra": {"tenant_id": TENANT, field: f"http://{host}{path}"}}
    with pytest.raises(ConfigurationError) as info:
        ConnectionSettings.from_mapping(mapping, conn_id="pbi")
    [problem] = info.value.problems  # type: ignore[attr-defined]
    assert problem.startswith(f"Refusing plain-http {'Power BI api_root' if field == 'api_root' else field}")
    assert "answer https only" in problem
    assert f"'https://{host}{path}'" in problem


def test_profile_id_extra_is_a_guid_carried_to_both_clients():
    """``profile_id`` (or ``profile``, prefixed or not) is validated and lower-cased; clients act as it, a keyword
    overrides it, and blank means the service principal itself."""
    profile = "6D0F1A5E-0000-4000-8000-0000000000C0"
    base = {"login": CLIENT, "password": SECRET, "tenant_id": TENANT}
    s = ConnectionSettings.from_mapping({**base, "extra": {"extra__pbi_taskflow__profile_id": profile}})
    assert s.profile_id == profile.lower()
    assert ConnectionSettings.from_mapping({**base, "profile": profile}).profile_id == profile.lower()
    assert ConnectionSettings.from_mapping({**base, "profile_id": "  "}).profile_id is None
    assert s.build_client().profile_id == profile.lower()
    assert s.build_async_client().profile_id == profile.lower()
    assert s.build_client(profile_id=None).profile_id is None
    with pytest.raises(ConfigurationError, match=r"Invalid profile_id 'contoso'.*GET /profiles"):
        ConnectionSettings.from_mapping({**base, "profile_id": "contoso"})
