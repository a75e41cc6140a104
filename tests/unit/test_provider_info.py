"""Unit tests for pbi_taskflow.airflow.provider_info: a literal that Airflow's own schemas accept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from pbi_taskflow.airflow.provider_info import get_provider_info


def _airflow_schema(name: str) -> dict:
    import importlib.util

    spec = importlib.util.find_spec("airflow")
    assert spec is not None
    assert spec.submodule_search_locations
    return json.loads((Path(next(iter(spec.submodule_search_locations))) / name).read_text())


def test_provider_info_validates_against_airflow_schema() -> None:
    """get_provider_info() passes the schema Airflow validates every provider with."""
    jsonschema.validate(get_provider_info(), _airflow_schema("provider_info.schema.json"))


def test_connection_type_validates_against_provider_yaml_schema() -> None:
    """The declarative conn-fields and ui-field-behaviour follow provider.yaml's schema."""
    schema = _airflow_schema("provider.yaml.schema.json")["properties"]["connection-types"]
    jsonschema.validate(get_provider_info()["connection-types"], schema)


def test_connection_form_covers_every_documented_field() -> None:
    """The form offers every connection extra and relabels login/password."""
    [conn] = get_provider_info()["connection-types"]
    assert conn["connection-type"] == "pbi_taskflow"
    assert conn["ui-field-behaviour"]["relabeling"] == {"login": "Client ID", "password": "Client Secret"}
    fields = conn["conn-fields"]
    for name in (
        "tenant_id",
        "auth_method",
        "private_key",
        "certificate_path",
        "federated_token_file",
        "cloud",
        "api_root",
        "authority_host",
        "scope",
        "ca_bundle",
        "allowed_workspaces",
        "profile_id",
    ):
        assert name in fields, name
    assert fields["private_key"]["schema"]["format"] == "password"


def _conn_fields() -> dict:
    [conn] = get_provider_info()["connection-types"]
    return conn["conn-fields"]


def _nullable(schema: dict) -> bool:
    kind = schema.get("type")
    return isinstance(kind, list) and "null" in kind


def test_no_extra_field_is_required_by_the_form() -> None:
    """Airflow's form requires every field whose schema type does not allow null: none of ours may be."""
    required = [name for name, field in _conn_fields().items() if not _nullable(field["schema"])]
    assert required == []


def test_choices_are_drop_downs_with_a_listed_default_and_labels() -> None:
    """Auth method and cloud are enums whose default is one of the choices, each choice with a display label."""
    fields = _conn_fields()
    for name, default in (("auth_method", "secret"), ("cloud", "public")):
        schema = fields[name]["schema"]
        assert schema["default"] == default
        assert default in schema["enum"]
        assert set(schema["values_display"]) == set(schema["enum"])
    from pbi_taskflow.client.clouds import CLOUDS
    from pbi_taskflow.client.settings import AUTH_METHODS

    assert fields["auth_method"]["schema"]["enum"] == list(AUTH_METHODS)
    assert fields["cloud"]["schema"]["enum"] == list(CLOUDS)
    for cloud, label in fields["cloud"]["schema"]["values_display"].items():
        assert CLOUDS[cloud].portal_url.removeprefix("https://") in label


def test_secret_fields_are_masked_in_the_form_and_redacted_by_airflow() -> None:
    """Secrets are password inputs, and their keys are ones Airflow's masker hides in the UI, API and logs."""
    from pbi_taskflow.observability.redact import masker

    module = masker()
    assert module is not None
    should_hide_value_for_key = module.should_hide_value_for_key
    fields = _conn_fields()
    secrets = {name for name, field in fields.items() if field["schema"].get("format") == "password"}
    assert secrets == {"private_key", "certificate_password"}
    for name in secrets:
        assert should_hide_value_for_key(name), name
    # "token" in its name: Airflow hides this path too (editing keeps it, as for every redacted extra).
    also_hidden = {"federated_token_file"}
    for name in set(fields) - secrets - also_hidden:
        assert not should_hide_value_for_key(name), f"{name} would show as *** although it is no secret"


def test_every_form_field_is_read_by_the_hook() -> None:
    """Each extra the form saves is a key the connection settings read (no field the hook ignores)."""
    from pbi_taskflow.client.settings import _ALIASES, _FIELDS

    for name in _conn_fields():
        assert _ALIASES.get(name, name) in _FIELDS, name


def test_package_name_is_canonical_and_decorator_registered() -> None:
    """The package name matches the distribution and the task decorator is listed."""
    info = get_provider_info()
    assert info["package-name"] == "pbi-taskflow"
    assert {"name": "powerbi_refresh", "class-name": "pbi_taskflow.airflow.decorator.powerbi_refresh_task"} in info[
        "task-decorators"
    ]
    assert "pbi_taskflow.alerts.TeamsNotifier" in info["notifications"]


def test_provider_info_module_imports_nothing_heavy() -> None:
    """Importing the entry-point module loads only the standard library and pbi_taskflow itself."""
    code = (
        "import sys; before = set(sys.modules); import pbi_taskflow.airflow.provider_info; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in new if m.split('.')[0] not in sys.stdlib_module_names and m not in ('pbi_taskflow', 'pbi_taskflow.airflow') "
        "and not m.startswith('pbi_taskflow.airflow.provider_info')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("option", ["default_conn_id", "poll_min_interval", "poll_max_interval", "max_concurrency"])
def test_config_section_declares_defaults(option: str) -> None:
    """The pbi_taskflow config section declares each option with a default."""
    options = get_provider_info()["config"]["pbi_taskflow"]["options"]
    assert options[option]["default"] is not None


def test_declared_appearance_grace_is_the_one_the_code_uses() -> None:
    """Airflow's config listing shows the same appearance grace the policy, operator and clients default to."""
    from pbi_taskflow.client.durations import APPEARANCE_GRACE
    from pbi_taskflow.engine.policy import RefreshPolicy

    options = get_provider_info()["config"]["pbi_taskflow"]["options"]
    assert float(options["appearance_grace"]["default"]) == APPEARANCE_GRACE == RefreshPolicy().appearance_grace
