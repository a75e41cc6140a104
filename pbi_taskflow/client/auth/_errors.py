"""MSAL result dicts and exceptions become typed pbi_taskflow errors here, and only here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pbi_taskflow.errors import (
    AuthenticationError,
    CertificateError,
    FederatedCredentialError,
    InvalidSecretError,
    PowerBIError,
    SecretExpiredError,
    ServerError,
    ThrottledError,
    TransportError,
    UnknownClientError,
    UnknownTenantError,
)

_AADSTS_RE = re.compile(r"AADSTS(\d+)")
_HTTP_STATUS_RE = re.compile(r"HTTP Error: (\d{3})")

_FEDERATED_CODES = {70021, 700211, 700212, 700213, 700238, 7002138}
_CERTIFICATE_CODES = {700027, 700024, 700023, 7000274}


def _codes(result: Mapping[str, Any]) -> list[int]:
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    if not codes:
        codes = [int(c) for c in _AADSTS_RE.findall(str(result.get("error_description") or ""))]
    return codes


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text and text.strip() else ""


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def error_from_msal(
    outcome: Mapping[str, Any] | BaseException,
    *,
    client_id: str | None,
    tenant_id: str | None,
    authority: str,
    credential_kind: str,
    secrets: Iterable[str] = (),
    status: int | None = None,
    retry_after: str | None = None,
) -> PowerBIError:
    """Turn an MSAL error result dict, or an exception raised inside MSAL, into a typed error.

    :param outcome: the dict MSAL returned (without ``access_token``) or the exception it raised.
    :param authority: the authority URL, for messages.
    :param credential_kind: ``client secret``, ``certificate``, ``federated credential`` or ``managed identity``.
    :param secrets: values that must never appear in the message (they are replaced by ``***``).
    :param status: HTTP status of the last token-endpoint answer, when known.
    :param retry_after: its ``Retry-After`` header, when present.
    """
    secrets = tuple(secrets)
    if credential_kind == "managed identity":
        who = f"managed identity {client_id}" if client_id else "the system-assigned managed identity"
    else:
        who = f"app {client_id}"
    where = f"tenant {tenant_id}" if tenant_id else authority
    base: dict[str, Any] = {"client_id": client_id, "tenant_id": tenant_id}
    if isinstance(outcome, PowerBIError):
        return outcome
    if isinstance(outcome, BaseException):
        return _from_exception(
            outcome, who=who, where=where, authority=authority, secrets=secrets, base=base, status=status,
            retry_after=retry_after,
        )

    codes = _codes(outcome)
    code = codes[0] if codes else None
    aad = f"AADSTS{code}" if code else (str(outcome.get("error") or "") or None)
    detail = _scrub(_first_line(str(outcome.get("error_description") or outcome.get("error") or "")), secrets)
    kw: dict[str, Any] = {**base, "code": aad, "request_id": outcome.get("correlation_id"), "status": status}
    said = f" Entra ID said: {detail}" if detail else ""

    if code == 7000222:
        return SecretExpiredError(
            f"The client secret of {who} in {where} has expired. Create a new secret for the app registration "
            "(Entra ID > App registrations > Certificates & secrets) and store its value in the connection's "
            "password; better, switch to a certificate or a federated credential, which do not expire silently."
            + said,
            **kw,
        )
    if code == 7000215:
        return InvalidSecretError(
            f"The client secret sent for {who} in {where} is not valid. Store the secret's Value (shown once when "
            "it is created), not its Secret ID, in the connection's password, and check that it belongs to this "
            "app." + said,
            **kw,
        )
    if code == 700016:
        return UnknownClientError(
            f"No application with client id {client_id} exists in {where}. Check the client id (the app "
            "registration's 'Application (client) ID') and the tenant id; the app may be registered in another "
            "tenant or deleted." + said,
            **kw,
        )
    if code == 90002:
        return UnknownTenantError(_tenant_message(tenant_id, authority) + said, **kw)
    if code in _FEDERATED_CODES:
        return FederatedCredentialError(
            f"No federated identity credential of {who} in {where} matches the presented token. Compare the "
            "token's issuer (iss), subject (sub) and audience (aud, usually api://AzureADTokenExchange) with the "
            "app registration's federated credentials; the match is case-sensitive." + said,
            **kw,
        )
    if code in _CERTIFICATE_CODES or (code is not None and credential_kind == "certificate" and code in (7000218,)):
        return CertificateError(
            f"Entra ID rejected the certificate assertion of {who} in {where}. Check that this certificate's "
            "public part is uploaded to the app registration (Certificates & secrets), has not expired, and that "
            "the private key matches it." + said,
            **kw,
        )
    error = str(outcome.get("error") or "")
    if status == 429 or error in ("temporarily_unavailable", "throttled"):
        from pbi_taskflow.client.api import parse_retry_after

        return ThrottledError(
            f"Entra ID is throttling token requests for {who} in {where}." + said,
            retry_after=parse_retry_after(retry_after),
            **_plain(kw),
        )
    if status is not None and status >= 500:
        return ServerError(f"Entra ID failed to issue a token for {who} in {where}; usually transient." + said, **_plain(kw))
    if credential_kind == "managed identity":
        return AuthenticationError(
            f"The managed identity endpoint refused a token to {who}. Check that the identity is assigned to this "
            "VM, App Service, Function or pod, and for a user-assigned identity that managed_identity_client_id is "
            "its client id." + said,
            **kw,
        )
    if error == "invalid_scope":
        return AuthenticationError(
            f"Entra ID rejected the scope requested for {who} in {where}. Check the connection's cloud and scope "
            "settings (the Power BI scope ends with '/.default')." + said,
            **kw,
        )
    return AuthenticationError(
        f"Entra ID refused a token to {who} in {where} using a {credential_kind}." + said,
        **kw,
    )


def _plain(kw: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments without the ones only AuthenticationError takes."""
    return {k: v for k, v in kw.items() if k not in ("client_id", "tenant_id")}


def _tenant_message(tenant_id: str | None, authority: str) -> str:
    return (
        f"Tenant {tenant_id} was not found at {authority}. Check the connection's tenant_id (the 'Directory "
        "(tenant) ID' GUID, or a verified domain such as contoso.onmicrosoft.com) and its cloud or authority_host."
    )


def _from_exception(
    exc: BaseException,
    *,
    who: str,
    where: str,
    authority: str,
    secrets: tuple[str, ...],
    base: dict[str, Any],
    status: int | None = None,
    retry_after: str | None = None,
) -> PowerBIError:
    from pbi_taskflow.client.api import is_tls_verification_failure, parse_retry_after, tls_error
    from pbi_taskflow.client.auth._http import transport_errors

    text = _scrub(str(exc), secrets)
    if is_tls_verification_failure(exc):
        return tls_error(f"the token request to {authority}", exc)
    if isinstance(exc, transport_errors()):
        return TransportError(f"Could not reach Entra ID at {authority} to get a token for {who}: {text}")
    if status == 429:
        return ThrottledError(
            f"Entra ID is throttling requests for {who} in {where} ({type(exc).__name__}).",
            status=status,
            retry_after=parse_retry_after(retry_after),
        )
    if status is not None and status >= 500:
        return ServerError(
            f"Entra ID failed while {who} in {where} asked for a token (HTTP {status}); usually transient.",
            status=status,
        )
    match = _HTTP_STATUS_RE.search(str(exc))
    if match or type(exc).__name__ == "MsalServiceError":
        status = int(match.group(1)) if match else None
        return ServerError(
            f"Entra ID failed to issue a token for {who} in {where} ({text}); usually transient.", status=status
        )
    if isinstance(exc, json.JSONDecodeError):
        return AuthenticationError(
            f"Entra ID at {authority} answered the token request for {who} with a non-JSON body; check the "
            "authority_host setting.",
            **base,
        )
    if isinstance(exc, ValueError) and "authority" in text.lower():
        return UnknownTenantError(_tenant_message(base.get("tenant_id"), authority), code="AADSTS90002", **base)
    if isinstance(exc, KeyError):
        return AuthenticationError(
            f"The OpenID configuration of {authority} is incomplete ({text} missing); check the authority_host "
            "setting.",
            **base,
        )
    return AuthenticationError(f"Could not get a token for {who} in {where}: {type(exc).__name__}: {text}", **base)
