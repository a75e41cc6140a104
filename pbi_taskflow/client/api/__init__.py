"""The Power BI REST API written once: request building, error decoding and response parsing.

Both :class:`~pbi_taskflow.client.sync.PowerBIClient` (requests) and
:class:`~pbi_taskflow.client.aio.AsyncPowerBIClient` (httpx) execute the :class:`ApiRequest` objects
built here and hand the answers back to the parsers here. Nothing in this package does I/O.

- :mod:`~pbi_taskflow.client.api.calls`: paths, bodies, headers;
- :mod:`~pbi_taskflow.client.api.errors`: error answers and transport failures as exceptions;
- :mod:`~pbi_taskflow.client.api.parsing`: answers as value types.
"""

from __future__ import annotations

from pbi_taskflow.client.api.calls import (
    GUID_RE,
    ApiRequest,
    ApiResponse,
    cancel_refresh,
    decode_body,
    get_dataset,
    header,
    is_guid,
    list_datasets,
    list_groups,
    odata_quote,
    refresh_details,
    refresh_history,
    request_id,
    trigger_refresh,
)
from pbi_taskflow.client.api.errors import (
    ambiguous_request,
    check,
    error_details,
    is_tls_verification_failure,
    never_connected,
    not_visible_error,
    parse_retry_after,
    raise_for_response,
    tls_error,
    transport_error,
)
from pbi_taskflow.client.api.parsing import (
    API_REFRESH_TYPES,
    combine_status,
    details_match,
    find_entry,
    iso_utc,
    parse_dataset,
    parse_datasets,
    parse_details,
    parse_history,
    parse_history_entry,
    parse_service_exception,
    parse_workspaces,
    refresh_id_from_trigger,
    result_from,
    state_from_entry,
)

__all__ = [
    "API_REFRESH_TYPES",
    "GUID_RE",
    "ApiRequest",
    "ApiResponse",
    "ambiguous_request",
    "cancel_refresh",
    "check",
    "combine_status",
    "decode_body",
    "details_match",
    "error_details",
    "find_entry",
    "get_dataset",
    "header",
    "is_guid",
    "iso_utc",
    "is_tls_verification_failure",
    "list_datasets",
    "list_groups",
    "never_connected",
    "not_visible_error",
    "odata_quote",
    "parse_dataset",
    "parse_datasets",
    "parse_details",
    "parse_history",
    "parse_history_entry",
    "parse_retry_after",
    "parse_service_exception",
    "parse_workspaces",
    "raise_for_response",
    "refresh_details",
    "refresh_history",
    "refresh_id_from_trigger",
    "request_id",
    "result_from",
    "state_from_entry",
    "tls_error",
    "transport_error",
    "trigger_refresh",
]
