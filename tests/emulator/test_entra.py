"""Entra ID part of the emulator, driven by real MSAL over TLS (and raw requests for protocol details)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
import requests

from pbi_taskflow.emulator import Emulator, make_client_certificate

from .helpers import msal_app, token

ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/dags:environment:prod"


def _acquire(emu: Emulator, credential: Any = None, **kwargs: Any) -> dict[str, Any]:
    return dict(msal_app(emu, credential, **kwargs).acquire_token_for_client([emu.scope]))


def _last_token_status(emu: Emulator) -> int | None:
    return [r for r in emu.requests if r.endpoint == "token"][-1].status


@pytest.fixture(scope="module")
def cert() -> Any:
    return make_client_certificate("pbi-taskflow-test")


def test_secret_credential_gets_a_token_usable_on_power_bi(emu: Emulator) -> None:
    """MSAL with the default client secret gets a bearer token that Power BI accepts."""
    result = _acquire(emu)
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    answer = requests.get(f"{emu.api_root}/groups", headers={"Authorization": f"Bearer {result['access_token']}"})
    assert answer.status_code == 200
    assert emu.count("discovery") == 1
    assert emu.count("token", "POST") == 1


@pytest.mark.parametrize("form", ["thumbprint", "public_certificate"])
def test_certificate_credential_is_verified_against_the_registered_certificate(emu: Emulator, cert: Any,
                                                                              form: str) -> None:
    """MSAL certificate assertions (x5t/RS256 and x5c/PS256 forms) are accepted for the registered certificate."""
    emu.add_app("11111111-0000-0000-0000-000000000001", certificate_pem=cert.certificate_pem)
    credential = {"private_key": cert.private_key_pem}
    credential[form] = cert.thumbprint if form == "thumbprint" else cert.certificate_pem
    result = _acquire(emu, credential, client_id="11111111-0000-0000-0000-000000000001")
    assert "access_token" in result, result


def test_certificate_signed_by_another_key_is_rejected_with_700027(emu: Emulator, cert: Any) -> None:
    """An assertion naming the registered thumbprint but signed with another key fails signature validation."""
    emu.add_app("11111111-0000-0000-0000-000000000002", certificate_pem=cert.certificate_pem)
    other = make_client_certificate("intruder")
    result = _acquire(emu, {"private_key": other.private_key_pem, "thumbprint": cert.thumbprint},
                      client_id="11111111-0000-0000-0000-000000000002")
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert _last_token_status(emu) == 401


def test_unregistered_certificate_is_rejected_with_700027(emu: Emulator, cert: Any) -> None:
    """A certificate that is not registered on the app is refused."""
    emu.add_app("11111111-0000-0000-0000-000000000003", certificate_pem=cert.certificate_pem)
    other = make_client_certificate("unregistered")
    result = _acquire(emu, {"private_key": other.private_key_pem, "public_certificate": other.certificate_pem},
                      client_id="11111111-0000-0000-0000-000000000003")
    assert result["error_codes"] == [700027]


def test_federated_assertion_matching_a_credential_gets_a_token(emu: Emulator) -> None:
    """A federated JWT from the emulated issuer whose iss/sub/aud match a federated credential is exchanged."""
    emu.add_app("22222222-0000-0000-0000-000000000001", federated=[{"issuer": ISSUER, "subject": SUBJECT}])
    calls = []

    def assertion() -> str:
        calls.append(1)
        return emu.issue_federated_token(subject=SUBJECT, issuer=ISSUER)

    result = _acquire(emu, {"client_assertion": assertion}, client_id="22222222-0000-0000-0000-000000000001")
    assert "access_token" in result, result
    assert calls == [1]


@pytest.mark.parametrize(
    ("subject", "issuer", "audience"),
    [
        pytest.param(SUBJECT.upper(), ISSUER, "api://AzureADTokenExchange", id="subject-case"),
        pytest.param(SUBJECT, ISSUER + "/other", "api://AzureADTokenExchange", id="issuer"),
        pytest.param(SUBJECT, ISSUER, "api://other", id="audience"),
    ],
)
def test_federated_assertion_without_a_matching_credential_gets_70021(emu: Emulator, subject: str, issuer: str,
                                                                      audience: str) -> None:
    """iss/sub/aud are matched case-sensitively; any mismatch answers 400 AADSTS70021."""
    emu.add_app("22222222-0000-0000-0000-000000000002", federated=[{"issuer": ISSUER, "subject": SUBJECT}])
    jwt = emu.issue_federated_token(subject=subject, issuer=issuer, audience=audience)
    result = _acquire(emu, {"client_assertion": lambda: jwt}, client_id="22222222-0000-0000-0000-000000000002")
    assert (result["error"], result["error_codes"]) == ("invalid_request", [70021])
    assert _last_token_status(emu) == 400


def test_expired_federated_assertion_is_rejected(emu: Emulator) -> None:
    """A federated JWT past its exp is refused with AADSTS700024."""
    emu.add_app("22222222-0000-0000-0000-000000000003", federated=[{"issuer": ISSUER, "subject": SUBJECT}])
    jwt = emu.issue_federated_token(subject=SUBJECT, issuer=ISSUER, lifetime=-120)
    result = _acquire(emu, {"client_assertion": lambda: jwt}, client_id="22222222-0000-0000-0000-000000000003")
    assert result["error_codes"] == [700024]


def test_invalid_secret_gets_7000215_with_401(emu: Emulator) -> None:
    """A wrong client secret answers 401 invalid_client AADSTS7000215 in the documented error shape."""
    result = _acquire(emu, "not-the-secret")
    assert (result["error"], result["error_codes"]) == ("invalid_client", [7000215])
    assert result["error_description"].startswith("AADSTS7000215: ")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(result)
    assert _last_token_status(emu) == 401


def test_expired_secret_gets_7000222_with_401(emu: Emulator) -> None:
    """An expired client secret answers 401 invalid_client AADSTS7000222."""
    emu.add_app("33333333-0000-0000-0000-000000000001", secret="old-secret", secret_expired=True)
    result = _acquire(emu, "old-secret", client_id="33333333-0000-0000-0000-000000000001")
    assert (result["error"], result["error_codes"]) == ("invalid_client", [7000222])
    assert _last_token_status(emu) == 401


def test_unknown_client_gets_700016_with_400(emu: Emulator) -> None:
    """A client id unknown in the tenant answers 400 unauthorized_client AADSTS700016."""
    result = _acquire(emu, client_id="44444444-0000-0000-0000-000000000001")
    assert (result["error"], result["error_codes"]) == ("unauthorized_client", [700016])
    assert _last_token_status(emu) == 400


def test_unknown_tenant_fails_discovery_and_token_with_90002(emu: Emulator) -> None:
    """An unknown tenant makes discovery answer 400 invalid_tenant (MSAL raises) and the token endpoint 400."""
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal_app(emu, tenant_id="55555555-0000-0000-0000-000000000001")
    discovery = [r for r in emu.requests if r.endpoint == "discovery"][-1]
    assert discovery.status == 400
    answer = requests.post(f"{emu.url}/55555555-0000-0000-0000-000000000001/oauth2/v2.0/token",
                           data={"grant_type": "client_credentials", "client_id": emu.client_id,
                                 "client_secret": emu.client_secret, "scope": emu.scope})
    assert answer.status_code == 400
    assert answer.json()["error_codes"] == [90002]


def test_missing_credential_gets_7000218_with_401(emu: Emulator) -> None:
    """A token request with neither client_secret nor client_assertion answers 401 AADSTS7000218."""
    answer = requests.post(f"{emu.authority}/oauth2/v2.0/token",
                           data={"grant_type": "client_credentials", "client_id": emu.client_id, "scope": emu.scope})
    assert answer.status_code == 401
    assert answer.json()["error_codes"] == [7000218]


def test_scope_without_default_suffix_is_invalid_scope(emu: Emulator) -> None:
    """Client credentials need a ``/.default`` scope; anything else answers 400 invalid_scope."""
    app = msal_app(emu)
    result = app.acquire_token_for_client(["https://analysis.windows.net/powerbi/api/Dataset.ReadWrite.All"])
    assert result["error"] == "invalid_scope"
    assert _last_token_status(emu) == 400


def test_token_lifetime_and_refresh_in_are_sent(emu: Emulator) -> None:
    """token_lifetime sets expires_in and refresh_in makes MSAL report refresh_on."""
    emu.token_lifetime = 1200
    emu.refresh_in = 600
    result = _acquire(emu)
    assert result["expires_in"] == 1200
    assert "refresh_on" in result


def test_twenty_concurrent_token_requests_all_succeed(emu: Emulator) -> None:
    """20 threads hitting the token endpoint at once all get a token."""
    form = {"grant_type": "client_credentials", "client_id": emu.client_id, "client_secret": emu.client_secret,
            "scope": emu.scope}

    def fetch(_: int) -> int:
        with requests.Session() as session:
            return session.post(f"{emu.authority}/oauth2/v2.0/token", data=form, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(fetch, range(20)))
    assert statuses == [200] * 20
    assert emu.count("token") == 20


def test_expired_and_unknown_tokens_on_power_bi(emu: Emulator) -> None:
    """No token or an unknown token gets 401; after expire_tokens() an issued token gets 403 TokenExpired."""
    url = f"{emu.api_root}/groups"
    assert requests.get(url).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    bearer = {"Authorization": f"Bearer {token(emu)}"}
    assert requests.get(url, headers=bearer).status_code == 200
    emu.expire_tokens()
    expired = requests.get(url, headers=bearer)
    assert expired.status_code == 403
    assert expired.json()["error"]["code"] == "TokenExpired"
    assert requests.get(url, headers={"Authorization": f"Bearer {token(emu)}"}).status_code == 200


def test_client_secret_basic_is_accepted(emu: Emulator) -> None:
    """The client id and secret may come in an HTTP Basic header instead of the form."""
    answer = requests.post(f"{emu.authority}/oauth2/v2.0/token", auth=(emu.client_id, emu.client_secret),
                           data={"grant_type": "client_credentials", "scope": emu.scope})
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"


def _assertion(cert: Any, claims: dict[str, Any], header: dict[str, Any]) -> str:
    import jwt as pyjwt

    return pyjwt.encode(claims, cert.private_key_pem, algorithm="PS256", headers=header)


def _post_assertion(emu: Emulator, client_id: str, assertion: str) -> requests.Response:
    return requests.post(f"{emu.authority}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "scope": emu.scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})


def test_hand_made_certificate_assertions(emu: Emulator, cert: Any) -> None:
    """x5t#S256 alone identifies the certificate; a wrong aud, a foreign iss or an expired exp are refused."""
    import base64
    import time

    client = "99999999-0000-0000-0000-000000000001"
    emu.add_app(client, certificate_pem=cert.certificate_pem)
    header = {"x5t#S256": base64.urlsafe_b64encode(bytes.fromhex(cert.thumbprint_sha256)).decode().rstrip("=")}
    endpoint = f"{emu.authority}/oauth2/v2.0/token"
    now = int(time.time())
    good = {"aud": endpoint, "iss": client, "sub": client, "exp": now + 600, "iat": now, "jti": "1"}
    assert _post_assertion(emu, client, _assertion(cert, good, header)).status_code == 200
    cases = [({**good, "aud": "https://login.microsoftonline.com/x/oauth2/v2.0/token"}, 700027),
             ({**good, "iss": "someone-else", "sub": "someone-else"}, 700023),
             ({**good, "exp": now - 300}, 700024)]
    for claims, code in cases:
        answer = _post_assertion(emu, client, _assertion(cert, claims, header))
        assert (answer.status_code, answer.json()["error_codes"]) == (401, [code]), claims


def test_discovery_keys_verify_issued_tokens(emu: Emulator) -> None:
    """The discovery document's jwks_uri serves the key that verifies the access tokens the emulator issues."""
    import jwt as pyjwt

    discovery = requests.get(f"{emu.authority}/v2.0/.well-known/openid-configuration").json()
    assert discovery["issuer"] == f"{emu.authority}/v2.0"
    jwk = requests.get(discovery["jwks_uri"]).json()["keys"][0]
    access_token = token(emu)
    claims = pyjwt.decode(access_token, pyjwt.PyJWK(jwk).key, algorithms=["RS256"],
                          audience="https://analysis.windows.net/powerbi/api")
    assert (claims["appid"], claims["tid"]) == (emu.client_id, emu.tenant_id)


def test_oidc_authority_works_with_default_msal_flags(emu: Emulator) -> None:
    """MSAL's oidc_authority form needs no instance_discovery flag: discovery and token stay on the emulator."""
    import msal

    app = msal.ConfidentialClientApplication(emu.client_id, client_credential=emu.client_secret,
                                             oidc_authority=f"{emu.authority}/v2.0")
    assert "access_token" in app.acquire_token_for_client([emu.scope])
    assert [r.endpoint for r in emu.requests] == ["discovery", "token"]
