"""Airflow provider metadata. A plain literal: no imports, no I/O, nothing that can raise.

Airflow calls :func:`get_provider_info` in every process during ``import airflow``; a failure here
would break ``import airflow`` for the whole environment, so this module must stay a literal.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Describe pbi_taskflow to Airflow: task decorator, connection type, trigger, notifiers and config."""
    return {
        "package-name": "pbi-taskflow",
        "name": "Power BI TaskFlow",
        "description": "Refresh Power BI semantic models from Airflow TaskFlow tasks.",
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "Power BI",
                "external-doc-url": "https://learn.microsoft.com/rest/api/power-bi/",
                "tags": ["service"],
            }
        ],
        "task-decorators": [
            {"name": "powerbi_refresh", "class-name": "pbi_taskflow.decorator.powerbi_refresh_task"},
        ],
        "connection-types": [
            {
                "connection-type": "pbi_taskflow",
                "hook-class-name": "pbi_taskflow.hook.PowerBIHook",
                "hook-name": "Power BI (pbi_taskflow)",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema"],
                    "relabeling": {"login": "Client ID", "password": "Client Secret"},
                    "placeholders": {
                        "login": "00000000-0000-0000-0000-000000000000 (app registration's Application ID)",
                        "password": "client secret value (not its id); leave empty for other auth methods",
                    },
                },
                "conn-fields": {
                    "tenant_id": {
                        "label": "Tenant ID",
                        "description": "Directory (tenant) id or domain of the Entra ID tenant.",
                        "schema": {"type": "string"},
                    },
                    "auth_method": {
                        "label": "Auth method",
                        "description": "How the app authenticates: client secret, certificate, "
                        "federated token (workload identity) or managed identity.",
                        "schema": {
                            "type": "string",
                            "enum": ["secret", "certificate", "federated", "managed_identity"],
                            "default": "secret",
                        },
                    },
                    "certificate": {
                        "label": "Certificate (PEM)",
                        "description": "Inline PEM holding the private key and the certificate.",
                        "schema": {"type": "string", "format": "password"},
                    },
                    "certificate_path": {
                        "label": "Certificate path",
                        "description": "Path of a PEM file holding the private key and the certificate.",
                        "schema": {"type": "string"},
                    },
                    "certificate_password": {
                        "label": "Certificate password",
                        "description": "Passphrase of the private key, if it is encrypted.",
                        "schema": {"type": "string", "format": "password"},
                    },
                    "federated_token_file": {
                        "label": "Federated token file",
                        "description": "File holding the federated (OIDC) assertion; "
                        "defaults to $AZURE_FEDERATED_TOKEN_FILE.",
                        "schema": {"type": "string"},
                    },
                    "managed_identity_client_id": {
                        "label": "Managed identity client ID",
                        "description": "Client id of a user-assigned managed identity; empty for system-assigned.",
                        "schema": {"type": "string"},
                    },
                    "cloud": {
                        "label": "Cloud",
                        "description": "Sovereign cloud preset for authority, API root and scope.",
                        "schema": {
                            "type": "string",
                            "enum": ["public", "usgov", "usgovhigh", "usgovdod", "china"],
                            "default": "public",
                        },
                    },
                    "api_root": {
                        "label": "API root override",
                        "description": "Power BI REST root, e.g. https://api.powerbi.com/v1.0/myorg.",
                        "schema": {"type": "string", "format": "url"},
                    },
                    "authority_host": {
                        "label": "Authority host override",
                        "description": "Entra ID host, e.g. https://login.microsoftonline.com.",
                        "schema": {"type": "string", "format": "url"},
                    },
                    "scope": {
                        "label": "Scope override",
                        "description": "Token scope, e.g. https://analysis.windows.net/powerbi/api/.default.",
                        "schema": {"type": "string"},
                    },
                    "ca_bundle": {
                        "label": "CA bundle",
                        "description": "Path of a PEM file of certificate authorities to trust.",
                        "schema": {"type": "string"},
                    },
                    "allowed_workspaces": {
                        "label": "Allowed workspaces",
                        "description": "Comma-separated workspace names or ids this connection may refresh; "
                        "empty allows all.",
                        "schema": {"type": "string"},
                    },
                    "timeout": {
                        "label": "HTTP timeout (s)",
                        "description": "Read timeout of each HTTP call to Power BI, in seconds.",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                },
            }
        ],
        "triggers": [
            {"integration-name": "Power BI", "python-modules": ["pbi_taskflow.trigger"]},
        ],
        "notifications": [
            "pbi_taskflow.alerts.TeamsNotifier",
            "pbi_taskflow.alerts.SlackNotifier",
            "pbi_taskflow.alerts.EmailNotifier",
        ],
        "config": {
            "pbi_taskflow": {
                "description": "Defaults of the @task.powerbi_refresh decorator.",
                "options": {
                    "default_conn_id": {
                        "description": "Connection used when a task does not pass conn_id.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "powerbi_prod",
                        "default": "powerbi_default",
                    },
                    "poll_min_interval": {
                        "description": (
                            "Shortest wait between two status calls of one refresh, in seconds. Refreshes with "
                            "history are only polled this often shortly before their expected end."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "5",
                        "default": "1",
                    },
                    "poll_max_interval": {
                        "description": "Longest wait between two status calls of one refresh, in seconds.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "900",
                        "default": "600",
                    },
                    "max_concurrency": {
                        "description": "How many refreshes one task may run at the same time by default.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "4",
                        "default": "8",
                    },
                    "appearance_grace": {
                        "description": (
                            "How long, in seconds, a refresh may stay missing from the refresh history after its "
                            "request (a standard refresh Power BI dropped, or a request whose answer was lost) "
                            "before it counts as never started."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "300",
                        "default": "180",
                    },
                },
            }
        },
    }
