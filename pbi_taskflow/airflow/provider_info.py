"""Airflow provider metadata. A plain literal: no imports, no I/O, nothing that can raise.

Airflow calls :func:`get_provider_info` in every process during ``import airflow``; a failure here
would break ``import airflow`` for the whole environment, so this module must stay a literal.
"""

from __future__ import annotations

from typing import Any

_OPTIONAL = ["string", "null"]
_ADVANCED = "Advanced: overrides and limits"
_CERTIFICATE = "Certificate auth"
_IDENTITY = "Federated and managed identity auth"

#: The connection form's extra fields (Airflow 3.2+ renders them from here; 3.0-3.1 from the hook's widgets).
#: Nothing is required by the form itself: which fields an auth method needs is checked by the hook, which
#: treats an empty or null field as unset, so a field left empty never changes behaviour.
_CONN_FIELDS: dict[str, Any] = {
    "tenant_id": {
        "label": "Tenant ID",
        "description": "Directory (tenant) ID (a GUID) or verified domain of the Entra ID tenant, e.g. "
        "contoso.onmicrosoft.com. Needed by every auth method except managed identity.",
        "schema": {"type": _OPTIONAL},
    },
    "auth_method": {
        "label": "Auth method",
        "description": "How the app authenticates. Client secret: fill Client ID and Client Secret above. "
        "Certificate: the PEM or its path under 'Certificate auth'. Federated: a workload-identity token "
        "file. Managed identity: the identity of the machine running the task.",
        "schema": {
            "type": _OPTIONAL,
            "enum": ["secret", "certificate", "federated", "managed_identity"],
            "values_display": {
                "secret": "Client secret",
                "certificate": "Certificate",
                "federated": "Federated token (workload identity)",
                "managed_identity": "Managed identity",
            },
            "default": "secret",
        },
    },
    "cloud": {
        "label": "Cloud",
        "description": "Where the Power BI tenant lives: sets the Entra ID authority, the API root, the token "
        "scope and the portal links.",
        "schema": {
            "type": _OPTIONAL,
            "enum": ["public", "usgov", "usgovhigh", "usgovdod", "china"],
            "values_display": {
                "public": "Public (app.powerbi.com)",
                "usgov": "US Government GCC (app.powerbigov.us)",
                "usgovhigh": "US Government GCC High (app.high.powerbigov.us)",
                "usgovdod": "US Government DoD (app.mil.powerbigov.us)",
                "china": "China, 21Vianet (app.powerbi.cn)",
            },
            "default": "public",
        },
    },
    # Stored as ``private_key``: Airflow redacts extras by key name, and "certificate" is not one it hides.
    "private_key": {
        "label": "Private key and certificate (PEM)",
        "description": "Inline PEM holding the private key and the certificate (pasted line breaks become "
        "spaces; that is fine). Or use Certificate path.",
        "schema": {"type": _OPTIONAL, "format": "password", "section": _CERTIFICATE},
    },
    "certificate_path": {
        "label": "Certificate path",
        "description": "Path, on the machines running the tasks, of a PEM file holding the private key and the "
        "certificate.",
        "schema": {"type": _OPTIONAL, "section": _CERTIFICATE},
    },
    "certificate_password": {
        "label": "Certificate password",
        "description": "Passphrase of the private key, if it is encrypted.",
        "schema": {"type": _OPTIONAL, "format": "password", "section": _CERTIFICATE},
    },
    "federated_token_file": {
        "label": "Federated token file",
        "description": "File holding the federated (OIDC) assertion; empty: $AZURE_FEDERATED_TOKEN_FILE.",
        "schema": {"type": _OPTIONAL, "section": _IDENTITY},
    },
    "managed_identity_client_id": {
        "label": "Managed identity client ID",
        "description": "Client ID of a user-assigned managed identity; empty: the system-assigned identity "
        "(or Client ID above, when set).",
        "schema": {"type": _OPTIONAL, "section": _IDENTITY},
    },
    "allowed_workspaces": {
        "label": "Allowed workspaces",
        "description": "Comma-separated workspace names or IDs this connection may refresh; empty allows all.",
        "schema": {"type": _OPTIONAL, "section": _ADVANCED},
    },
    "profile_id": {
        "label": "Service principal profile ID",
        "description": "Multi-tenant apps: the profile to act as (sent as X-PowerBI-Profile-Id on every Power BI "
                       "call); a task's profile_id overrides it; empty: the service principal itself.",
        "schema": {"type": _OPTIONAL, "section": _ADVANCED},
    },
    "timeout": {
        "label": "HTTP timeout (s)",
        "description": "Read timeout of each HTTP call to Power BI, in seconds; empty: the default.",
        "schema": {"type": ["number", "null"], "minimum": 1, "section": _ADVANCED},
    },
    "ca_bundle": {
        "label": "CA bundle",
        "description": "Path of a PEM file of certificate authorities to trust (TLS-inspecting proxies).",
        "schema": {"type": _OPTIONAL, "section": _ADVANCED},
    },
    "api_root": {
        "label": "API root override",
        "description": "Power BI REST root, e.g. https://api.powerbi.com/v1.0/myorg; empty: the cloud's.",
        "schema": {"type": _OPTIONAL, "section": _ADVANCED},
    },
    "authority_host": {
        "label": "Authority host override",
        "description": "Entra ID host, e.g. https://login.microsoftonline.com; empty: the cloud's.",
        "schema": {"type": _OPTIONAL, "section": _ADVANCED},
    },
    "scope": {
        "label": "Scope override",
        "description": "Token scope, e.g. https://analysis.windows.net/powerbi/api/.default; empty: the cloud's.",
        "schema": {"type": _OPTIONAL, "section": _ADVANCED},
    },
}


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
            {"name": "powerbi_refresh", "class-name": "pbi_taskflow.airflow.decorator.powerbi_refresh_task"},
        ],
        "connection-types": [
            {
                "connection-type": "pbi_taskflow",
                "hook-class-name": "pbi_taskflow.airflow.hook.PowerBIHook",
                "hook-name": "Power BI (pbi_taskflow)",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema"],
                    "relabeling": {"login": "Client ID", "password": "Client Secret"},
                    "placeholders": {
                        "login": "00000000-0000-0000-0000-000000000000 (app registration's Application ID)",
                        "password": "client secret value (not its id); leave empty for other auth methods",
                    },
                },
                "conn-fields": _CONN_FIELDS,
            }
        ],
        "extra-links": ["pbi_taskflow.airflow.links.PowerBIDatasetLink", "pbi_taskflow.airflow.links.PowerBIWorkspaceLink"],
        "triggers": [
            {"integration-name": "Power BI", "python-modules": ["pbi_taskflow.airflow.trigger"]},
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
                    "trigger_settle": {
                        "description": (
                            "Seconds after a task defers before its trigger reports the refreshes' outcome. Airflow "
                            "fails a try whose trigger fires before the scheduler has handled the deferring worker's "
                            "exit (\"finished with state success, but the task instance's state attribute is "
                            "queued\"); refreshes that end sooner are reported once this has passed. 0 turns it off."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "20",
                        "default": "10",
                    },
                    "worker_wait_under": {
                        "description": (
                            "A deferrable task whose refreshes history says end within this many seconds waits for "
                            "them in the worker, for that long at most, instead of deferring at once: deferring "
                            "costs trigger_settle plus a resume in a worker. It defers if they still run then; "
                            "refreshes without history defer at once. 0 always defers at once."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "0",
                        "default": "20",
                    },
                    "triggerer_gc_freeze": {
                        "description": (
                            "When the first Power BI trigger of a triggerer process starts, keep the objects alive "
                            "then (Airflow's start-up heap) out of garbage collection (gc.freeze), so a full "
                            "collection does not stall every trigger's event loop for about 0.1 s. Objects created "
                            "later are collected as usual."
                        ),
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    },
                },
            }
        },
    }
