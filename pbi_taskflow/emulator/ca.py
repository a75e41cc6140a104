"""Throwaway TLS material for the emulator: a CA, a loopback server certificate and client certificates."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_KEY_SIZE = 2048


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """Paths of the PEM files written for one emulator instance.

    :param ca_cert: the emulator CA certificate alone.
    :param ca_bundle: the system CAs plus the emulator CA (safe to use as ``REQUESTS_CA_BUNDLE``).
    :param server_cert: the server certificate (SANs ``IP:127.0.0.1`` and ``DNS:localhost``).
    :param server_key: the server private key.
    """

    ca_cert: str
    ca_bundle: str
    server_cert: str
    server_key: str


@dataclasses.dataclass(frozen=True)
class ClientCertificate:
    """A self-signed certificate for certificate credentials (app registrations).

    :param private_key_pem: the unencrypted PKCS#8 private key.
    :param certificate_pem: the certificate.
    :param thumbprint: SHA-1 thumbprint in upper-case hex (what the Azure portal shows).
    :param thumbprint_sha256: SHA-256 thumbprint in upper-case hex.
    """

    private_key_pem: str
    certificate_pem: str
    thumbprint: str
    thumbprint_sha256: str

    @property
    def combined_pem(self) -> str:
        """Private key followed by the certificate, the inline form of a certificate connection."""
        return self.private_key_pem + self.certificate_pem


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return builder.not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))


def _system_bundle() -> bytes:
    import certifi

    parts = [Path(certifi.where()).read_bytes()]
    extra = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if extra and Path(extra).is_file():
        parts.append(Path(extra).read_bytes())
    return b"\n".join(parts)


def write_tls_files(directory: str | os.PathLike[str]) -> TLSFiles:
    """Create a CA and a server certificate for 127.0.0.1/localhost and write them under ``directory``."""
    import ipaddress

    folder = Path(directory)
    ca_key = _key()
    ca_name = _name("pbi_taskflow emulator CA")
    ca = (
        _validity(x509.CertificateBuilder(), 30)
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = _key()
    server = (
        _validity(x509.CertificateBuilder(), 30)
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    files = TLSFiles(
        ca_cert=str(folder / "emulator-ca.pem"),
        ca_bundle=str(folder / "ca-bundle.pem"),
        server_cert=str(folder / "server.pem"),
        server_key=str(folder / "server-key.pem"),
    )
    Path(files.ca_cert).write_bytes(ca_pem)
    Path(files.ca_bundle).write_bytes(_system_bundle() + b"\n" + ca_pem)
    Path(files.server_cert).write_bytes(server.public_bytes(serialization.Encoding.PEM))
    Path(files.server_key).write_bytes(_key_pem(server_key))
    os.chmod(files.server_key, 0o600)
    return files


def thumbprints(certificate_der: bytes) -> tuple[str, str]:
    """Return the (SHA-1, SHA-256) thumbprints of a DER certificate in upper-case hex."""
    return hashlib.sha1(certificate_der).hexdigest().upper(), hashlib.sha256(certificate_der).hexdigest().upper()


def b64url(data: bytes) -> str:
    """Base64url with ``=`` padding, the form MSAL uses for ``x5t`` / ``x5t#S256``."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def make_client_certificate(common_name: str = "pbi-taskflow-app", *, days: int = 30) -> ClientCertificate:
    """Create a self-signed certificate to register on an emulated app (``emu.add_app(certificate_pem=...)``)."""
    key = _key()
    cert = (
        _validity(x509.CertificateBuilder(), days)
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .sign(key, hashes.SHA256())
    )
    sha1, sha256 = thumbprints(cert.public_bytes(serialization.Encoding.DER))
    return ClientCertificate(
        private_key_pem=_key_pem(key).decode("ascii"),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        thumbprint=sha1,
        thumbprint_sha256=sha256,
    )
