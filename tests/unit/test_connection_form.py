"""What Airflow's connection form saves, read back by the hook: every field of the form is in the extras, unset
ones as null (or as an empty string from older forms and hand-written JSON); neither changes what the hook does."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pbi_taskflow.airflow.connection import settings_from_connection
from pbi_taskflow.airflow.provider_info import get_provider_info

sys.path.insert(0, str(Path(__file__).parent))
from _pbi_certs import self_signed

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"


class _Conn:
    def __init__(self, *, login: str | None, password: str | None, extra: dict[str, Any]) -> None:
        self.conn_id = "pbi_form"
        self.conn_type = "pbi_taskflow"
        self.login = login
        self.password = password
        self.extra = json.dumps(extra)


def _form_extra(filled: dict[str, Any], *, unset: Any = None) -> dict[str, Any]:
    """The extra JSON the form saves: every conn-field, the defaults of the drop-downs, ``unset`` for the rest."""
    [conn] = get_provider_info()["connection-types"]
    extra = {name: field["schema"].get("default", unset) for name, field in conn["conn-fields"].items()}
    extra.update(filled)
    return extra


def _pem() -> str:
    key, cert = self_signed()
    return (key + cert).replace("\n", " ")  # a browser's single-line input turns pasted line breaks into spaces


CASES = {
    "secret": ("s3cret-value", {"tenant_id": TENANT}),
    "certificate": (None, {"tenant_id": TENANT, "auth_method": "certificate", "private_key": "PEM"}),
    "certificate_path": (None, {"tenant_id": TENANT, "auth_method": "certificate",
                                "certificate_path": "/secrets/pbi.pem"}),
    "federated": (None, {"tenant_id": TENANT, "auth_method": "federated",
                         "federated_token_file": "/var/run/secrets/token"}),
    "managed_identity": (None, {"auth_method": "managed_identity"}),
}


@pytest.mark.parametrize("unset", [None, "", "  "], ids=["null", "empty", "blank"])
@pytest.mark.parametrize("case", list(CASES))
def test_form_extras_give_the_same_settings_as_only_the_filled_fields(case: str, unset: Any) -> None:
    """Unset fields saved as null, "" or blanks are the same as absent: same settings, defaults kept."""
    password, filled = CASES[case]
    filled = {k: (_pem() if v == "PEM" else v) for k, v in filled.items()}
    login = None if case == "managed_identity" else CLIENT
    from_form = settings_from_connection(_Conn(login=login, password=password, extra=_form_extra(filled, unset=unset)))
    minimal = settings_from_connection(_Conn(login=login, password=password, extra=filled))
    assert dataclasses.asdict(from_form) == dataclasses.asdict(minimal)
    assert from_form.auth_method == filled.get("auth_method", "secret")
    assert from_form.cloud_name == "public"
    assert from_form.timeout is None
    assert from_form.allowed_workspaces == ()
    assert from_form.cloud.api_root == "https://api.powerbi.com/v1.0/myorg"


def test_cleared_drop_downs_fall_back_to_secret_and_public() -> None:
    """A drop-down cleared in the form (null) means its default."""
    extra = _form_extra({"tenant_id": TENANT, "auth_method": None, "cloud": None})
    settings = settings_from_connection(_Conn(login=CLIENT, password="s3cret-value", extra=extra))
    assert (settings.auth_method, settings.cloud_name) == ("secret", "public")


def test_pem_pasted_into_the_form_builds_a_certificate_credential() -> None:
    """The inline PEM with its line breaks turned into spaces still loads (key and certificate)."""
    extra = _form_extra({"tenant_id": TENANT, "auth_method": "certificate", "private_key": _pem()})
    settings = settings_from_connection(_Conn(login=CLIENT, password=None, extra=extra))
    credential = settings.build_credential()
    assert credential.kind == "certificate"
    assert len(credential.sha1_thumbprint) == 40


def test_blank_client_secret_is_missing_not_a_secret() -> None:
    """A client secret of only blanks is reported missing, as an empty one is."""
    from pbi_taskflow.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="Missing client secret"):
        settings_from_connection(_Conn(login=CLIENT, password="   ", extra=_form_extra({"tenant_id": TENANT})))
