"""The credentials: client secret, certificate, federated (workload identity) and managed identity."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from pbi_taskflow.client.auth._base import MsalCredential, _Slot
from pbi_taskflow.client.clouds import Cloud
from pbi_taskflow.errors import CertificateError, ConfigurationError, FederatedCredentialError


def _digest(*parts: str | bytes) -> str:
    import hashlib

    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def _require(value: str | None, what: str, hint: str) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"Missing {what}: {hint}"
        raise ConfigurationError(msg)
    return value.strip()


def _ids(tenant_id: str, client_id: str) -> tuple[str, str]:
    return (
        _require(tenant_id, "tenant_id", "expected the Entra 'Directory (tenant) ID'."),
        _require(client_id, "client_id", "expected the app registration's 'Application (client) ID'."),
    )


class ClientSecretCredential(MsalCredential):
    """An app registration's client secret.

    :param tenant_id: Entra tenant id (GUID) or verified domain.
    :param client_id: the app registration's Application (client) ID.
    :param client_secret: the secret's *value*.
    :param cloud: authority host and scope (default: public cloud).
    :param ca_bundle: PEM file of CAs to trust for the authority.
    """

    kind = "client secret"

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        cloud: Cloud | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        tenant_id, client_id = _ids(tenant_id, client_id)
        if not isinstance(client_secret, str) or not client_secret:
            msg = "Missing client secret: expected the secret's Value from the app registration (Certificates & secrets)."
            raise ConfigurationError(msg)
        super().__init__(tenant_id=tenant_id, client_id=client_id, cloud=cloud, ca_bundle=ca_bundle)
        self.__secret = client_secret

    def _client_credential(self) -> Any:
        return self.__secret

    def _fingerprint(self) -> str:
        return _digest("secret", self.__secret)

    def _secrets(self) -> Iterable[str]:
        return (self.__secret,)


class CertificateCredential(MsalCredential):
    """An app registration's certificate (private key + certificate, PEM).

    Without a ``thumbprint`` the assertion is signed PS256 with an ``x5t#S256`` header and the
    certificate in ``x5c`` (subject name/issuer auth works too). With a ``thumbprint`` (SHA-1 hex),
    the legacy RS256 + ``x5t`` form is used.

    :param tenant_id: Entra tenant id (GUID) or verified domain.
    :param client_id: the app registration's Application (client) ID.
    :param certificate: inline PEM holding the private key and the certificate.
    :param certificate_path: path of such a PEM file (instead of ``certificate``).
    :param password: password of an encrypted private key.
    :param thumbprint: SHA-1 thumbprint (hex); derived from the certificate when absent.
    :param send_certificate_chain: send the certificate in ``x5c`` (default True).
    :param cloud: authority host and scope (default: public cloud).
    :param ca_bundle: PEM file of CAs to trust for the authority.
    """

    kind = "certificate"

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        certificate: str | bytes | None = None,
        certificate_path: str | None = None,
        password: str | None = None,
        thumbprint: str | None = None,
        send_certificate_chain: bool = True,
        cloud: Cloud | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        tenant_id, client_id = _ids(tenant_id, client_id)
        super().__init__(tenant_id=tenant_id, client_id=client_id, cloud=cloud, ca_bundle=ca_bundle)
        data = _read_pem(certificate, certificate_path)
        self.__key_pem, self.certificate_pem, self.sha1_thumbprint, self.sha256_thumbprint = _load_pem(
            data, password, certificate_path
        )
        self.thumbprint = _normalise_thumbprint(thumbprint) if thumbprint else None
        if self.thumbprint and self.thumbprint not in (self.sha1_thumbprint, self.sha256_thumbprint):
            msg = (
                f"certificate_thumbprint {thumbprint!r} does not match the certificate (SHA-1 thumbprint "
                f"{self.sha1_thumbprint}); remove it (it is derived from the certificate) or fix it."
            )
            raise ConfigurationError(msg)
        self.send_certificate_chain = send_certificate_chain

    def __repr__(self) -> str:
        return (
            f"CertificateCredential(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"thumbprint={self.sha1_thumbprint!r}, authority_host={self.authority_host!r})"
        )

    def _client_credential(self) -> Any:
        cred: dict[str, Any] = {"private_key": self.__key_pem}
        if self.thumbprint == self.sha1_thumbprint:
            cred["thumbprint"] = self.sha1_thumbprint
            if self.send_certificate_chain:
                cred["public_certificate"] = self.certificate_pem
        elif self.send_certificate_chain:
            cred["public_certificate"] = self.certificate_pem
        else:
            cred["thumbprint"] = self.sha1_thumbprint
        return cred

    def _fingerprint(self) -> str:
        return _digest("certificate", self.__key_pem, str(self.thumbprint), str(self.send_certificate_chain))

    def _secrets(self) -> Iterable[str]:
        return (self.__key_pem,)


def _read_pem(certificate: str | bytes | None, path: str | None) -> bytes:
    if certificate and path:
        msg = "Give either certificate (inline PEM) or certificate_path, not both."
        raise ConfigurationError(msg)
    if certificate:
        return certificate.encode() if isinstance(certificate, str) else certificate
    if not path:
        msg = "Missing certificate: set certificate (inline PEM with private key and certificate) or certificate_path."
        raise ConfigurationError(msg)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        msg = f"Cannot read certificate_path {path!r}: {exc.strerror}. Expected a PEM file with the private key and certificate."
        raise ConfigurationError(msg) from None


def _load_pem(data: bytes, password: str | None, path: str | None) -> tuple[str, str, str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    source = f"certificate file {path!r}" if path else "the inline certificate"
    if b"PRIVATE KEY-----" not in data:
        msg = f"{source} has no PEM private key; expected '-----BEGIN PRIVATE KEY-----' followed by the certificate."
        raise CertificateError(msg)
    try:
        key = serialization.load_pem_private_key(data, password=password.encode() if password else None)
    except TypeError:
        msg = f"The private key in {source} is encrypted; set certificate_password." if not password else (
            f"The private key in {source} is not encrypted; remove certificate_password."
        )
        raise CertificateError(msg) from None
    except ValueError:
        msg = f"Cannot read the private key in {source}: wrong certificate_password or malformed PEM."
        raise CertificateError(msg) from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        msg = f"{source} has no PEM certificate; expected '-----BEGIN CERTIFICATE-----' after the private key."
        raise CertificateError(msg) from None
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    matching = [
        c
        for c in certs
        if c.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        == public
    ]
    if not matching:
        msg = f"No certificate in {source} matches its private key; put the key and its own certificate in the PEM."
        raise CertificateError(msg)
    cert = matching[0]
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return (
        key_pem,
        cert_pem,
        cert.fingerprint(hashes.SHA1()).hex().upper(),
        cert.fingerprint(hashes.SHA256()).hex().upper(),
    )


def _normalise_thumbprint(value: str) -> str:
    cleaned = value.replace(":", "").replace(" ", "").strip().upper()
    if not cleaned or any(c not in "0123456789ABCDEF" for c in cleaned):
        msg = f"Invalid certificate_thumbprint {value!r}: expected the hexadecimal thumbprint (40 characters for SHA-1)."
        raise ConfigurationError(msg)
    return cleaned


class FederatedCredential(MsalCredential):
    """A federated identity credential (workload identity, GitHub OIDC…): an external token as assertion.

    The assertion is read fresh on every token request, so rotated token files are picked up.

    :param tenant_id: Entra tenant id (GUID) or verified domain.
    :param client_id: the app registration's Application (client) ID.
    :param token_file: file holding the external token (default: ``$AZURE_FEDERATED_TOKEN_FILE``).
    :param assertion: a callable returning the external token (instead of a file).
    :param cloud: authority host and scope (default: public cloud).
    :param ca_bundle: PEM file of CAs to trust for the authority.
    """

    kind = "federated credential"

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        token_file: str | None = None,
        assertion: Callable[[], str] | None = None,
        cloud: Cloud | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        tenant_id, client_id = _ids(tenant_id, client_id)
        super().__init__(tenant_id=tenant_id, client_id=client_id, cloud=cloud, ca_bundle=ca_bundle)
        if assertion is not None and token_file:
            msg = "Give either token_file or assertion for a federated credential, not both."
            raise ConfigurationError(msg)
        self.token_file = None if assertion is not None else (token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE"))
        if assertion is None and not self.token_file:
            msg = (
                "Missing federated token: set federated_token_file, or the AZURE_FEDERATED_TOKEN_FILE environment "
                "variable (set by Azure workload identity), or pass an assertion callable."
            )
            raise ConfigurationError(msg)
        self._assertion = assertion
        self._last_assertion = ""

    def __repr__(self) -> str:
        source = self.token_file if self.token_file else "<callable>"
        return (
            f"FederatedCredential(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"token_file={source!r}, authority_host={self.authority_host!r})"
        )

    def read_assertion(self) -> str:
        """The current external token (read from the file or the callable now)."""
        if self._assertion is not None:
            value = self._assertion()
        else:
            try:
                with open(str(self.token_file), encoding="utf-8") as fh:
                    value = fh.read()
            except OSError as exc:
                msg = f"Cannot read the federated token file {self.token_file!r}: {exc.strerror}."
                raise FederatedCredentialError(msg, client_id=self.client_id, tenant_id=self.tenant_id) from None
        value = (value or "").strip()
        if not value:
            msg = f"The federated token ({self.token_file or 'callable'}) is empty; the identity provider has not written it yet."
            raise FederatedCredentialError(msg, client_id=self.client_id, tenant_id=self.tenant_id)
        self._last_assertion = value
        return value

    def _client_credential(self) -> Any:
        return {"client_assertion": self.read_assertion}

    def _fingerprint(self) -> str:
        return _digest("federated", str(self.token_file), str(id(self._assertion)))

    def _secrets(self) -> Iterable[str]:
        return (self._last_assertion,) if self._last_assertion else ()


class ManagedIdentityCredential(MsalCredential):
    """An Azure managed identity (system-assigned, or user-assigned by client id).

    :param client_id: client id of a user-assigned identity; ``None`` for the system-assigned one.
    :param cloud: scope (default: public cloud); the authority is not used.
    :param ca_bundle: PEM file of CAs to trust.
    """

    kind = "managed identity"

    def __init__(self, client_id: str | None = None, *, cloud: Cloud | None = None, ca_bundle: str | None = None) -> None:
        super().__init__(tenant_id=None, client_id=client_id, cloud=cloud, ca_bundle=ca_bundle)

    @property
    def _key(self) -> tuple[str, ...]:
        return ("managed-identity", (self.client_id or "system").lower(), self.scope)

    @property
    def resource(self) -> str:
        """The resource MSAL asks managed identity for: the scope without ``/.default``."""
        return self.scope.removesuffix("/.default")

    def __repr__(self) -> str:
        return f"ManagedIdentityCredential(client_id={self.client_id!r})"

    def _client_credential(self) -> Any:
        import msal

        if self.client_id:
            return msal.UserAssignedManagedIdentity(client_id=self.client_id)
        return msal.SystemAssignedManagedIdentity()

    def _fingerprint(self) -> str:
        return _digest("managed-identity", self.client_id or "system")

    def _build_app(self, slot: _Slot) -> Any:
        import msal

        return msal.ManagedIdentityClient(
            self._client_credential(),
            http_client=self._session(slot),
            token_cache=slot.token_cache,
            http_cache=slot.http_cache,
        )

    def _acquire(self, app: Any) -> Any:
        return app.acquire_token_for_client(resource=self.resource)

    def _remove_tokens(self, app: Any) -> None:
        cache = getattr(app, "_token_cache", None) or getattr(app, "token_cache", None)
        if cache is None:
            return
        for at in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(at)
