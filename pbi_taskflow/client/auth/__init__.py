"""Credentials for Power BI on MSAL: client secret, certificate, federated credential, managed identity.

Importing this package is cheap: MSAL and requests load on the first token request. Tokens are
cached once per (authority, tenant, client, scope, credential fingerprint) per process and shared by
every credential object with the same material and every caller; a cold cache hit by many threads at
once causes one token request.
"""

from __future__ import annotations

from pbi_taskflow.client.auth._base import AccessToken, Credential, MsalCredential, clear_token_caches, token_requests
from pbi_taskflow.client.auth._errors import error_from_msal
from pbi_taskflow.client.auth.credentials import (
    CertificateCredential,
    ClientSecretCredential,
    FederatedCredential,
    ManagedIdentityCredential,
)

__all__ = [
    "AccessToken",
    "CertificateCredential",
    "ClientSecretCredential",
    "Credential",
    "FederatedCredential",
    "ManagedIdentityCredential",
    "MsalCredential",
    "clear_token_caches",
    "error_from_msal",
    "token_requests",
]
