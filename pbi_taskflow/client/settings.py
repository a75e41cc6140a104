"""Connection settings: one validated, secret-safe record from an Airflow connection or a mapping.

The keys are those of the ``pbi_taskflow`` Airflow connection: ``login`` (client id), ``password``
(client secret) and the extras ``tenant_id``, ``auth_method``, ``private_key`` (inline PEM; the connection
form's key, redacted by Airflow; ``certificate`` is read too), ``certificate_path``,
``certificate_password``, ``certificate_thumbprint``, ``federated_token_file``,
``managed_identity_client_id``, ``cloud``, ``authority_host``, ``api_root``, ``scope``, ``ca_bundle``,
``allowed_workspaces``, ``timeout`` and ``profile_id``. Extras may also carry the ``extra__pbi_taskflow__`` prefix.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pbi_taskflow.client.clouds import Cloud, get_cloud
from pbi_taskflow.client.names import normalise_allowed
from pbi_taskflow.errors import ConfigurationError

if TYPE_CHECKING:
    from pbi_taskflow.client.aio import AsyncPowerBIClient
    from pbi_taskflow.client.auth import MsalCredential
    from pbi_taskflow.client.sync import PowerBIClient

T = TypeVar("T")

AUTH_METHODS = ("secret", "certificate", "federated", "managed_identity")
_PREFIX = "extra__pbi_taskflow__"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
_ALIASES = {
    "client_id": "login",
    "client_secret": "password",
    "tenant": "tenant_id",
    "tenantid": "tenant_id",
    "certificate_pem": "certificate",
    # The connection form's key for the inline PEM: a name Airflow's secret masker redacts in the UI and API.
    "private_key": "certificate",
    "thumbprint": "certificate_thumbprint",
    "profile": "profile_id",
    "token_file": "federated_token_file",
}
_FIELDS = {
    "login",
    "password",
    "tenant_id",
    "auth_method",
    "certificate",
    "certificate_path",
    "certificate_password",
    "certificate_thumbprint",
    "federated_token_file",
    "managed_identity_client_id",
    "cloud",
    "authority_host",
    "api_root",
    "scope",
    "ca_bundle",
    "allowed_workspaces",
    "timeout",
    "profile_id",
}


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to build a credential and a client. The repr never shows secrets.

    :param tenant_id: Entra tenant id (GUID) or verified domain.
    :param client_id: the app registration's Application (client) ID (connection login).
    :param client_secret: the client secret's value (connection password), for ``auth_method='secret'``.
    :param auth_method: ``secret``, ``certificate``, ``federated`` or ``managed_identity``.
    :param certificate: inline PEM with private key and certificate.
    :param certificate_path: path of such a PEM file.
    :param certificate_password: password of an encrypted private key.
    :param certificate_thumbprint: SHA-1 thumbprint (derived from the certificate when absent).
    :param federated_token_file: file with the federated token (default ``$AZURE_FEDERATED_TOKEN_FILE``).
    :param managed_identity_client_id: client id of a user-assigned managed identity.
    :param cloud_name: cloud preset (``public``, ``usgov``, ``usgovhigh``, ``usgovdod``, ``china``).
    :param authority_host: overrides the cloud's Entra host.
    :param api_root: overrides the cloud's Power BI API root.
    :param scope: overrides the cloud's Power BI scope.
    :param ca_bundle: PEM file of CAs to trust.
    :param allowed_workspaces: names or ids of the only workspaces this connection may refresh.
    :param timeout: HTTP read timeout in seconds.
    :param profile_id: the service principal profile to act as (``X-PowerBI-Profile-Id`` on every Power BI call,
        never on Entra ID's token calls); ``None``: the service principal itself.
    :param conn_id: the Airflow connection id, for messages.
    """

    tenant_id: str | None
    client_id: str | None
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    auth_method: str = "secret"
    certificate: str | None = dataclasses.field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_password: str | None = dataclasses.field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    federated_token_file: str | None = None
    managed_identity_client_id: str | None = None
    cloud_name: str = "public"
    authority_host: str | None = None
    api_root: str | None = None
    scope: str | None = None
    ca_bundle: str | None = None
    allowed_workspaces: tuple[str, ...] = ()
    timeout: float | None = None
    conn_id: str | None = None
    profile_id: str | None = None

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, conn_id: str | None = None) -> ConnectionSettings:
        """Build and validate settings from flat keys or an Airflow-like ``{"login", "password", "extra"}``.

        ``extra`` may be a dict or a JSON string; extras may carry the ``extra__pbi_taskflow__`` prefix.

        :raises ConfigurationError: naming the wrong or missing field and what is expected.
        """
        if not isinstance(mapping, Mapping):
            msg = f"Connection settings must be a mapping, got {type(mapping).__name__}."
            raise ConfigurationError(msg)
        flat = _flatten(mapping)
        where = f"connection {conn_id!r}" if conn_id else "the Power BI connection"
        problems: list[str] = []
        method = str(flat.get("auth_method") or "secret").strip().lower().replace("-", "_")
        method = {"client_secret": "secret", "cert": "certificate", "workload_identity": "federated",
                  "managed": "managed_identity", "msi": "managed_identity"}.get(method, method)
        if method not in AUTH_METHODS:
            problems.append(f"Unknown auth_method {flat.get('auth_method')!r}: expected one of {', '.join(AUTH_METHODS)}.")
        tenant = _opt(flat.get("tenant_id"))
        client = _opt(flat.get("login"))
        if method != "managed_identity":
            if not tenant:
                problems.append(
                    "Missing tenant_id: set the extra 'tenant_id' to the Entra 'Directory (tenant) ID' (a GUID) or a "
                    "verified domain such as contoso.onmicrosoft.com."
                )
            if not client:
                problems.append("Missing client id: set the connection's login to the app registration's "
                                "'Application (client) ID'.")
        if tenant and not (_GUID.match(tenant) or _DOMAIN.match(tenant)):
            problems.append(
                f"Invalid tenant_id {tenant!r}: expected the 'Directory (tenant) ID' GUID or a verified domain such as "
                "contoso.onmicrosoft.com."
            )
        if client and method != "managed_identity" and not _GUID.match(client):
            problems.append(f"Invalid client id {client!r}: expected the app registration's 'Application (client) ID' "
                            "(a GUID).")
        secret = flat.get("password") or None
        if method == "secret" and not secret:
            problems.append(
                "Missing client secret: auth_method is 'secret', so set the connection's password to the secret's "
                "Value (or choose auth_method 'certificate', 'federated' or 'managed_identity')."
            )
        if method == "certificate" and not (flat.get("certificate") or flat.get("certificate_path")):
            problems.append("Missing certificate: auth_method is 'certificate', so set the extra 'private_key' "
                            "(inline PEM with the key and the certificate; 'certificate' is read too) or "
                            "'certificate_path'.")
        allowed = _collect(problems, normalise_allowed, flat.get("allowed_workspaces"))
        timeout = _collect(problems, _timeout, flat.get("timeout"))
        profile = _collect(problems, check_profile_id, flat.get("profile_id"))
        values = {key: _opt(flat.get(key)) for key in ("cloud", "authority_host", "api_root", "scope")}
        try:
            cloud = get_cloud(values["cloud"] or "public", authority_host=values["authority_host"],
                              api_root=values["api_root"], scope=values["scope"])
        except ConfigurationError as exc:
            problems.append(exc.message)
        else:
            from pbi_taskflow.client.urls import require_https

            # plain http even on loopback: every server these reach (and the emulator) speaks https only
            _collect(problems, functools.partial(require_https, allow_loopback_http=False), cloud.authority_host,
                     "authority_host")
            _collect(problems, functools.partial(require_https, allow_loopback_http=False), cloud.api_root,
                     "Power BI api_root")
        if problems:
            raise _invalid(where, problems)
        return cls(
            tenant_id=tenant,
            client_id=client,
            client_secret=str(secret) if secret else None,
            auth_method=method,
            certificate=_opt(flat.get("certificate")),
            certificate_path=_opt(flat.get("certificate_path")),
            certificate_password=flat.get("certificate_password") or None,
            certificate_thumbprint=_opt(flat.get("certificate_thumbprint")),
            federated_token_file=_opt(flat.get("federated_token_file")),
            managed_identity_client_id=_opt(flat.get("managed_identity_client_id")) or (client if method == "managed_identity" else None),
            cloud_name=values["cloud"] or "public",
            authority_host=values["authority_host"],
            api_root=values["api_root"],
            scope=values["scope"],
            ca_bundle=_opt(flat.get("ca_bundle")),
            allowed_workspaces=allowed or (),
            timeout=timeout,
            conn_id=conn_id,
            profile_id=profile,
        )

    @property
    def cloud(self) -> Cloud:
        """The :class:`Cloud` preset with this connection's overrides."""
        return get_cloud(self.cloud_name, authority_host=self.authority_host, api_root=self.api_root, scope=self.scope)

    def secrets(self) -> tuple[str, ...]:
        """The secret values (for Airflow's secret masker)."""
        return tuple(v for v in (self.client_secret, self.certificate, self.certificate_password) if v)

    def build_credential(self) -> MsalCredential:
        """The credential for :attr:`auth_method` (no network I/O until its first token)."""
        from pbi_taskflow.client import auth
        cloud = self.cloud
        if self.auth_method == "secret":
            return auth.ClientSecretCredential(
                str(self.tenant_id), str(self.client_id), str(self.client_secret), cloud=cloud, ca_bundle=self.ca_bundle
            )
        if self.auth_method == "certificate":
            return auth.CertificateCredential(
                str(self.tenant_id),
                str(self.client_id),
                certificate=self.certificate,
                certificate_path=self.certificate_path,
                password=self.certificate_password,
                thumbprint=self.certificate_thumbprint,
                cloud=cloud,
                ca_bundle=self.ca_bundle,
            )
        if self.auth_method == "federated":
            return auth.FederatedCredential(
                str(self.tenant_id), str(self.client_id), token_file=self.federated_token_file, cloud=cloud,
                ca_bundle=self.ca_bundle,
            )
        return auth.ManagedIdentityCredential(self.managed_identity_client_id, cloud=cloud, ca_bundle=self.ca_bundle)

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "credential": self.build_credential(),
            "cloud": self.cloud,
            "ca_bundle": self.ca_bundle,
            "conn_id": self.conn_id,
            "profile_id": self.profile_id,
        }
        if self.timeout:
            options["timeout"] = (min(10.0, self.timeout), self.timeout)
        return options

    def build_client(self, **kwargs: Any) -> PowerBIClient:
        """A :class:`~pbi_taskflow.client.sync.PowerBIClient` for this connection (``kwargs`` override)."""
        from pbi_taskflow.client.sync import PowerBIClient

        return PowerBIClient(**{**self._client_options(), "allowed_workspaces": self.allowed_workspaces, **kwargs})

    def build_async_client(self, **kwargs: Any) -> AsyncPowerBIClient:
        """An :class:`~pbi_taskflow.client.aio.AsyncPowerBIClient` for this connection (``kwargs`` override).

        Call it outside the event loop (or in a thread): building a certificate credential reads files.
        """
        from pbi_taskflow.client.aio import AsyncPowerBIClient

        return AsyncPowerBIClient(**{**self._client_options(), **kwargs})


def _flatten(mapping: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        key = key.strip()
        key = key.removeprefix(_PREFIX)
        key = _ALIASES.get(key.lower(), key.lower())
        if key in _FIELDS and not _blank(value):
            flat[key] = value

    extra = mapping.get("extra") or mapping.get("extra_dejson")
    if isinstance(extra, str) and extra.strip():
        try:
            extra = json.loads(extra)
        except ValueError:
            msg = "The connection's extra is not valid JSON; expected an object such as {\"tenant_id\": \"...\"}."
            raise ConfigurationError(msg) from None
    if isinstance(extra, Mapping):
        for key, value in extra.items():
            put(str(key), value)
    for key, value in mapping.items():
        if key not in ("extra", "extra_dejson"):
            put(str(key), value)
    return flat


def _blank(value: Any) -> bool:
    """An unset field: None, or a string of nothing but whitespace (what a form leaves in a field not filled)."""
    return value is None or (isinstance(value, str) and not value.strip())


def _collect(problems: list[str], check: Callable[..., T], *args: Any) -> T | None:
    """``check(*args)``, or None with its problem appended to ``problems``."""
    try:
        return check(*args)
    except ConfigurationError as exc:
        problems.append(exc.message)
        return None


def _invalid(where: str, problems: list[str]) -> ConfigurationError:
    """One error listing every problem of the connection (``.problems`` keeps them apart)."""
    if len(problems) == 1:
        error = ConfigurationError(f"{where[0].upper()}{where[1:]}: {problems[0]}")
    else:
        lines = "".join(f"\n  - {p}" for p in problems)
        error = ConfigurationError(f"{where[0].upper()}{where[1:]} has {len(problems)} problems:{lines}")
    error.problems = list(problems)  # type: ignore[attr-defined]
    return error


def _opt(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def check_profile_id(value: Any, what: str = "profile_id") -> str | None:
    """A service principal profile id (a GUID, lower-cased), ``None`` when unset; ``ConfigurationError`` otherwise."""
    if _blank(value):
        return None
    if not isinstance(value, str) or not _GUID.match(value.strip()):
        msg = (f"Invalid {what} {value!r}: expected the id (a GUID) of a service principal profile of this app, as "
               "GET /profiles lists them; leave it empty to act as the service principal itself.")
        raise ConfigurationError(msg)
    return value.strip().lower()


def _timeout(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0 or isinstance(value, bool):
        msg = f"Invalid timeout {value!r}: expected the HTTP read timeout in seconds (a positive number)."
        raise ConfigurationError(msg)
    return seconds
