from __future__ import annotations

import logging

import pytest

from pbi_taskflow.client.models import Handle, RefreshResult, RefreshState, RefreshStatus
from pbi_taskflow.observability.status_log import (
    STATE_PREFIX,
    THROTTLE_PREFIX,
    format_fields,
    log_state,
    log_throttle,
    parse_fields,
    summary_table,
)

HANDLE = Handle(
    workspace_id="ws-1",
    workspace_name="Finance Team",
    dataset_id="ds-1",
    dataset_name='Sales "Gold" Model',
    refresh_id="rid-123",
    kind="enhanced",
    requested_at="2026-11-27T05:00:00+00:00",
)


def _result(**kw: object) -> RefreshResult:
    base: dict[str, object] = {
        "workspace_id": "ws-1",
        "workspace_name": "Finance",
        "dataset_id": "ds-1",
        "dataset_name": "Sales",
        "refresh_id": "rid-1",
        "kind": "enhanced",
        "status": RefreshStatus.COMPLETED,
        "duration_s": 42.0,
    }
    base.update(kw)
    return RefreshResult(**base)  # type: ignore[arg-type]


def test_log_state_writes_one_parseable_line(caplog: pytest.LogCaptureFixture) -> None:
    """log_state emits exactly one INFO line whose key=value pairs round-trip through parse_fields."""
    logger = logging.getLogger("test.status")
    state = RefreshState(status=RefreshStatus.IN_PROGRESS, extended_status="InProgress")
    with caplog.at_level(logging.INFO, logger="test.status"):
        log_state(logger, HANDLE, state, elapsed_s=12.34, attempt=2, throttled=5)
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.levelno == logging.INFO
    line = record.getMessage()
    assert line.startswith(STATE_PREFIX)
    fields = parse_fields(line)
    assert fields["workspace"] == "Finance Team"
    assert fields["dataset"] == 'Sales "Gold" Model'
    assert fields["refresh_id"] == "rid-123"
    assert fields["status"] == "InProgress"
    assert fields["elapsed_s"] == "12.3"
    assert fields["attempt"] == "2"
    assert fields["throttled_s"] == "5.0"
    assert record.pbi_refresh["dataset_id"] == "ds-1"  # type: ignore[attr-defined]


def test_log_state_failure_is_warning_with_error(caplog: pytest.LogCaptureFixture) -> None:
    """A failed state logs at WARNING and carries the Power BI error code and message."""
    logger = logging.getLogger("test.status")
    state = RefreshState(status=RefreshStatus.FAILED, error_code="ModelRefreshFailed", error_message="bad\nsource")
    with caplog.at_level(logging.INFO, logger="test.status"):
        log_state(logger, HANDLE, state, elapsed_s=3)
    record = caplog.records[0]
    assert record.levelno == logging.WARNING
    fields = parse_fields(record.getMessage())
    assert fields["error_code"] == "ModelRefreshFailed"
    assert fields["error_message"] == "bad\nsource"
    assert fields["throttled_s"] is None
    assert "\n" not in record.getMessage()


def test_log_throttle_line(caplog: pytest.LogCaptureFixture) -> None:
    """log_throttle names the endpoint, the Retry-After wait and the dataset."""
    logger = logging.getLogger("test.status")
    with caplog.at_level(logging.INFO, logger="test.status"):
        log_throttle(logger, endpoint="refresh_post", retry_after=7, dataset="Sales")
    line = caplog.records[0].getMessage()
    assert line.startswith(THROTTLE_PREFIX)
    assert parse_fields(line) == {"endpoint": "refresh_post", "retry_after_s": "7.0", "dataset": "Sales"}


def test_log_state_accepts_non_stdlib_logger() -> None:
    """Loggers that only offer .log(level, msg) (structlog style) receive the same line."""
    seen: list[tuple[int, str]] = []

    class Sink:
        def log(self, level: int, msg: str) -> None:
            seen.append((level, msg))

    log_state(Sink(), HANDLE, RefreshState(status=RefreshStatus.COMPLETED), elapsed_s=1.0)
    assert len(seen) == 1
    assert parse_fields(seen[0][1])["status"] == "Completed"


def test_format_fields_quotes_and_dashes() -> None:
    """Values with spaces, quotes or equals signs are quoted; None and empty show as '-'."""
    text = format_fields({"a": "x y", "b": None, "c": "k=v", "d": "", "e": 3})
    assert text == 'a="x y" b=- c="k=v" d=- e=3'
    assert parse_fields(text) == {"a": "x y", "b": None, "c": "k=v", "d": None, "e": "3"}


def test_summary_table_lists_every_dataset() -> None:
    """The summary has a header, one row per dataset with status, duration, refresh id and error code, and a total."""
    results = [
        _result(),
        _result(
            dataset_name="Inventory",
            dataset_id="ds-2",
            refresh_id="rid-2",
            status=RefreshStatus.FAILED,
            duration_s=3725.0,
            error_code="ModelRefreshFailed",
        ),
        _result(dataset_name="A" * 60, status=RefreshStatus.SKIPPED, refresh_id=None, duration_s=None).to_dict(),
    ]
    table = summary_table(results)
    lines = ["heading", *table.splitlines()]
    for column in ("WORKSPACE", "DATASET", "STATUS", "DURATION", "REFRESH ID", "ERROR"):
        assert column in lines[1]
    for text in ("Sales", "Completed", "42.0s", "rid-1"):
        assert text in lines[3]
    for text in ("Inventory", "Failed", "1h02m", "ModelRefreshFailed"):
        assert text in lines[4]
    for text in ("…", "Skipped"):
        assert text in lines[5]
    assert lines[-1] == "2 of 3 dataset(s) succeeded."
    # fixed width: the STATUS column starts at the same offset on every row
    offset = lines[1].index("STATUS")
    assert lines[3][offset:].startswith("Completed")
    assert lines[4][offset:].startswith("Failed")


def test_summary_table_empty() -> None:
    """An empty result list gives a one-line placeholder instead of an empty table."""
    assert summary_table([]) == "(no datasets)"


def test_status_line_hides_secrets_echoed_by_power_bi(caplog: pytest.LogCaptureFixture) -> None:
    """A secret known to Airflow's masker, or a bearer token, inside Power BI's error text is hidden."""
    from airflow.sdk.log import mask_secret

    planted = "Planted-Status-Secret-3b9a"
    mask_secret(planted)
    logger = logging.getLogger("test.status")
    state = RefreshState(status=RefreshStatus.FAILED, error_message=f"login {planted} failed; Bearer abc.def")
    with caplog.at_level(logging.INFO, logger="test.status"):
        log_state(logger, HANDLE, state, elapsed_s=1)
    line = caplog.records[0].getMessage()
    assert planted not in line
    assert "abc.def" not in line
    assert parse_fields(line)["error_message"] == "login *** failed; Bearer ***"


def test_power_bis_in_progress_unknown_reads_running_but_records_keep_it(caplog: pytest.LogCaptureFixture) -> None:
    """A standard refresh's history status `Unknown` (still running) shows as status=Running in the line and in
    the summary table, while record.pbi_refresh and the result records keep Power BI's `Unknown`."""
    logger = logging.getLogger("test.status")
    state = RefreshState(status=RefreshStatus.UNKNOWN)
    with caplog.at_level(logging.INFO, logger="test.status"):
        log_state(logger, HANDLE, state, elapsed_s=3.0)
    [record] = caplog.records
    assert parse_fields(record.getMessage())["status"] == "Running"
    assert "Unknown" not in record.getMessage()
    assert record.pbi_refresh["status"] == RefreshStatus.UNKNOWN  # type: ignore[attr-defined]
    running = _result(status=RefreshStatus.UNKNOWN, duration_s=None)
    table = summary_table([running])
    assert "Running" in table
    assert "Unknown" not in table
    assert running.to_dict()["status"] == "Unknown"
