"""Every emulator response body validates against Microsoft's Power BI swagger schemas.

The spec path comes from ``PBI_TASKFLOW_SWAGGER`` (``.ci/run`` and ``make test`` set it). Without the file the test
skips locally and fails under CI (``CI`` set).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pbi_taskflow.emulator import Emulator


@pytest.fixture(scope="module")
def swagger() -> dict[str, Any]:
    path = os.environ.get("PBI_TASKFLOW_SWAGGER", "")
    if not path or not Path(path).is_file():
        reason = f"Power BI swagger not found (PBI_TASKFLOW_SWAGGER={path!r}); set it to swagger.json"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(reason)
        pytest.skip(reason)
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _validator(swagger: dict[str, Any], definition: str) -> jsonschema.Draft4Validator:
    """A draft-4 validator for ``#/definitions/<definition>``; ``x-ms-*`` keys are unknown keywords, so ignored."""
    assert definition in swagger["definitions"], definition
    schema = {"$ref": f"#/definitions/{definition}", "definitions": swagger["definitions"]}
    return jsonschema.Draft4Validator(schema)


def _check(swagger: dict[str, Any], definition: str, body: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator(swagger, definition).iter_errors(body)]
    assert not errors, f"{definition}: {errors}"


def test_the_validator_resolves_references_and_rejects_bad_bodies(swagger: dict[str, Any]) -> None:
    """Guard against a vacuous check: a history entry with a wrong type fails through the $ref chain."""
    bad = {"value": [{"refreshType": "Bogus", "startTime": "x", "requestId": "r"}]}
    assert list(_validator(swagger, "Refreshes").iter_errors(bad))
    assert list(_validator(swagger, "Groups").iter_errors({"value": [{"name": "no id"}]}))


def test_listing_bodies_match_the_swagger(swagger: dict[str, Any], emu: Emulator, api: Any,
                                          sales: dict[str, str]) -> None:
    """Groups, datasets and dataset bodies validate against Groups, Datasets and Dataset."""
    emu.add_workspace("Shared", dedicated=False)
    emu.add_dataset(sales["ws"], "Live", refreshable=False)
    _check(swagger, "Groups", api.get(f"{emu.api_root}/groups").json())
    _check(swagger, "Datasets", api.get(f"{emu.api_root}/groups/{sales['ws']}/datasets").json())
    _check(swagger, "Dataset", api.get(sales["base"]).json())


def test_history_and_details_bodies_match_the_swagger(swagger: dict[str, Any], emu: Emulator, api: Any,
                                                      sales: dict[str, str]) -> None:
    """History (running, completed, failed, cancelled, enhanced) and details (running and done) validate."""
    emu.add_history(sales["ds"], status="Completed", ago=7200)
    emu.add_history(sales["ds"], status="Failed", ago=3600, refresh_type="ViaApi")
    emu.add_history(sales["ds"], status="Cancelled", ago=1800, refresh_type="OnDemand")
    emu.set_refresh(sales["ds"], duration=4, outcome="Failed")
    location = api.post(f"{sales['base']}/refreshes", json={"type": "Full", "objects": [{"table": "T"}]}).headers[
        "Location"]
    running = api.get(location)
    assert running.status_code == 202
    _check(swagger, "DatasetRefreshDetail", running.json())
    _check(swagger, "Refreshes", api.get(f"{sales['base']}/refreshes").json())
    emu.advance(5)
    done = api.get(location)
    assert done.status_code == 200
    _check(swagger, "DatasetRefreshDetail", done.json())
    emu.set_refresh(sales["ds"], outcome="Completed", duration=1)
    location = api.post(f"{sales['base']}/refreshes", json={"type": "Calculate"}).headers["Location"]
    emu.advance(2)
    _check(swagger, "DatasetRefreshDetail", api.get(location).json())
    emu.set_refresh(sales["ds"], duration=600)
    api.post(f"{sales['base']}/refreshes")
    _check(swagger, "Refreshes", api.get(f"{sales['base']}/refreshes").json())


def test_error_bodies_match_the_swagger(swagger: dict[str, Any], emu: Emulator, api: Any,
                                        sales: dict[str, str]) -> None:
    """The ``error`` object of 400, 401, 403 and 404 answers validates against PowerBIApiErrorResponseDetail."""
    emu.start_external_refresh(sales["ds"], duration=600)
    answers = [
        api.post(f"{sales['base']}/refreshes"),
        api.get(f"{emu.api_root}/groups/{sales['ws']}/datasets/00000000-0000-0000-0000-000000000000"),
        api.get(f"{emu.api_root}/groups/00000000-0000-0000-0000-000000000000/datasets"),
    ]
    emu.inject("groups", "error", status=401)
    answers.append(api.get(f"{emu.api_root}/groups"))
    emu.expire_tokens()
    answers.append(api.get(f"{emu.api_root}/groups"))
    assert [a.status_code for a in answers] == [400, 404, 404, 401, 403]
    for answer in answers:
        _check(swagger, "PowerBIApiErrorResponseDetail", answer.json()["error"])


def test_fault_bodies_match_the_swagger(swagger: dict[str, Any], emu: Emulator, api: Any,
                                        sales: dict[str, str]) -> None:
    """The answers of the status-read faults (401, 403, a lagging details 404) and of a ``race`` validate."""
    emu.set_refresh(sales["ds"], duration=60, history_lag=5, details_lag=5)
    location = api.post(f"{sales['base']}/refreshes", json={"type": "Full"}).headers["Location"]
    lagging = api.get(location)
    _check(swagger, "Refreshes", api.get(f"{sales['base']}/refreshes").json())
    emu.inject("details", "error", status=403)
    emu.inject("history", "error", status=401)
    answers = [lagging, api.get(location), api.get(f"{sales['base']}/refreshes")]
    emu.advance(61)
    emu.inject("refresh_post", "race", refresh_type="ViaEnhancedApi")
    answers.append(api.post(f"{sales['base']}/refreshes"))
    assert [a.status_code for a in answers] == [404, 403, 401, 400]
    for answer in answers:
        _check(swagger, "PowerBIApiErrorResponseDetail", answer.json()["error"])
    emu.advance(6)
    _check(swagger, "Refreshes", api.get(f"{sales['base']}/refreshes").json())
    for run in emu.state.dataset(sales["ds"]).runs:
        if run.enhanced:
            details = api.get(f"{sales['base']}/refreshes/{run.request_id}")
            _check(swagger, "DatasetRefreshDetail", details.json())


def test_table_bodies_match_the_swagger(swagger: dict[str, Any], emu: Emulator, api: Any,
                                        sales: dict[str, str]) -> None:
    """The tables listing validates against Tables; refusing a missing table or an unseeded listing, against the
    error schema."""
    refusals = [api.get(f"{sales['base']}/tables")]
    emu.set_tables(sales["ds"], {"Orders": ["Orders-2025"], "Customers": None})
    _check(swagger, "Tables", api.get(f"{sales['base']}/tables").json())
    refusals.append(api.post(f"{sales['base']}/refreshes", json={"objects": [{"table": "Ordres"}]}))
    refusals.append(api.post(f"{sales['base']}/refreshes",
                             json={"objects": [{"table": "Orders", "partition": "Orders-2024"}]}))
    assert [r.status_code for r in refusals] == [400, 400, 400]
    for answer in refusals:
        _check(swagger, "PowerBIApiErrorResponseDetail", answer.json()["error"])
