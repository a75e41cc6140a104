"""Unit tests for the shared value types in pbi_taskflow.client.models."""

from __future__ import annotations

import datetime as dt

import pytest

from pbi_taskflow.client.models import (
    CommitMode,
    Handle,
    HistoryEntry,
    Refresh,
    RefreshObject,
    RefreshOptions,
    RefreshResult,
    RefreshStatus,
    RefreshType,
    parse_timestamp,
)
from pbi_taskflow.errors import ConfigurationError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Completed", RefreshStatus.COMPLETED, id="exact"),
        pytest.param("completed", RefreshStatus.COMPLETED, id="lower-2021-docs"),
        pytest.param("inProgress", RefreshStatus.IN_PROGRESS, id="camel"),
        pytest.param("notStarted", RefreshStatus.NOT_STARTED, id="not-started"),
        pytest.param("TimedOut", RefreshStatus.TIMED_OUT, id="timed-out"),
        pytest.param("Cancelled", RefreshStatus.CANCELLED, id="cancelled"),
        pytest.param("succeeded", RefreshStatus.COMPLETED, id="aas-wording"),
        pytest.param(None, RefreshStatus.UNKNOWN, id="missing"),
        pytest.param("SomethingNew", RefreshStatus.UNKNOWN, id="unknown-value"),
    ],
)
def test_status_parse_is_case_insensitive_and_tolerant(raw: str | None, expected: RefreshStatus) -> None:
    """Status strings from any endpoint map to one enum, whatever their casing."""
    assert RefreshStatus.parse(raw) is expected


def test_terminal_and_running_statuses() -> None:
    """Completed, Failed, Disabled, Cancelled and TimedOut end a refresh; Unknown, NotStarted, InProgress do not."""
    terminal = {s for s in RefreshStatus if s.is_terminal}
    assert terminal == {
        RefreshStatus.COMPLETED,
        RefreshStatus.FAILED,
        RefreshStatus.DISABLED,
        RefreshStatus.CANCELLED,
        RefreshStatus.TIMED_OUT,
        RefreshStatus.SKIPPED,
    }
    assert {s for s in RefreshStatus if s.is_failure} == {
        RefreshStatus.FAILED,
        RefreshStatus.DISABLED,
        RefreshStatus.CANCELLED,
        RefreshStatus.TIMED_OUT,
    }


def test_standard_options_send_no_notification() -> None:
    """Without enhanced fields the body is a standard refresh a service principal may send."""
    options = RefreshOptions()
    assert not options.is_enhanced
    assert options.to_body() == {"notifyOption": "NoNotification"}


def test_enhanced_body_uses_api_names_and_formats_timeout() -> None:
    """Enhanced options become the documented camelCase body with an hh:mm:ss timeout."""
    options = RefreshOptions(
        type="full",
        commit_mode="transactional",
        max_parallelism=4,
        retry_count=2,
        objects=["Sales", ("Orders", "2026")],
        effective_date=dt.date(2026, 11, 27),
        timeout=dt.timedelta(hours=1, minutes=30),
    )
    assert options.is_enhanced
    assert options.to_body() == {
        "type": "Full",
        "commitMode": "Transactional",
        "maxParallelism": 4,
        "retryCount": 2,
        "objects": [{"table": "Sales"}, {"table": "Orders", "partition": "2026"}],
        "effectiveDate": "2026-11-27",
        "timeout": "01:30:00",
    }


def test_partial_batch_turns_refresh_policy_off() -> None:
    """PartialBatch needs applyRefreshPolicy false, so it is sent explicitly."""
    assert RefreshOptions(commit_mode=CommitMode.PARTIAL_BATCH).to_body()["applyRefreshPolicy"] is False


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"type": "Add"}, "Invalid refresh type 'Add'", id="type"),
        pytest.param({"commit_mode": "sometimes"}, "Invalid commit mode", id="commit-mode"),
        pytest.param({"max_parallelism": 0}, "max_parallelism", id="parallelism"),
        pytest.param({"retry_count": -1}, "retry_count", id="retry-count"),
        pytest.param({"timeout": "90 minutes"}, "hh:mm:ss", id="timeout-format"),
        pytest.param({"timeout": dt.timedelta(hours=25)}, "24:00:00", id="timeout-cap"),
        pytest.param({"effective_date": "yesterday"}, "effective_date", id="date"),
        pytest.param({"commit_mode": "PartialBatch", "apply_refresh_policy": True}, "PartialBatch", id="policy"),
        pytest.param({"notify_option": "MailOnFailure", "type": "Full"}, "notify_option", id="notify-enhanced"),
        pytest.param({"objects": [42]}, "Invalid refresh object", id="object"),
    ],
)
def test_invalid_options_fail_before_any_call(kwargs: dict[str, object], fragment: str) -> None:
    """Each invalid option raises ConfigurationError naming the field and what is expected."""
    with pytest.raises(ConfigurationError, match=fragment):
        RefreshOptions(**kwargs)  # type: ignore[arg-type]


def test_refresh_collects_tables_and_partitions() -> None:
    """Refresh(tables=, partitions=) becomes enhanced objects, deduplicated, in order."""
    refresh = Refresh("Sales", "Finance WS", tables=["A", "A"], partitions={"B": ["p1", "p2"]}, type=RefreshType.FULL)
    assert refresh.options.objects == (
        RefreshObject("A"),
        RefreshObject("B", "p1"),
        RefreshObject("B", "p2"),
    )
    assert refresh.key == ("finance ws", "sales")


def test_refresh_rejects_unknown_option_names() -> None:
    """A misspelt option is a TypeError listing the accepted names."""
    with pytest.raises(TypeError, match="commit_mode"):
        Refresh("Sales", comit_mode="Transactional")


def test_refresh_rejects_empty_dataset() -> None:
    """An empty dataset name is refused with a message saying what is expected."""
    with pytest.raises(ConfigurationError, match="dataset name or id"):
        Refresh("  ")


def test_merged_options_prefer_own_fields() -> None:
    """A Refresh's own options win over task defaults; unset fields fall back to the defaults."""
    mine = RefreshOptions(type="Full")
    defaults = RefreshOptions(type="DataOnly", max_parallelism=2)
    merged = mine.merged(defaults)
    assert merged.type is RefreshType.FULL
    assert merged.max_parallelism == 2


def test_handle_and_result_round_trip_as_plain_dicts() -> None:
    """Handles and results survive to_dict/from_dict, so they travel through XComs and trigger kwargs."""
    handle = Handle("w", "W", "d", "D", "r", "enhanced", "2026-11-27T00:00:00+00:00")
    assert Handle.from_dict(handle.to_dict()) == handle
    result = RefreshResult(
        "w", "W", "d", "D", "r", "enhanced", RefreshStatus.FAILED, error_code="X", object_errors=({"table": "T"},)
    )
    data = result.to_dict()
    assert data["status"] == "Failed"
    assert RefreshResult.from_dict(data) == result


def test_timestamps_with_and_without_offset_are_utc() -> None:
    """History (Z) and execution-details (no offset, 2 fraction digits) timestamps both parse as UTC."""
    assert parse_timestamp("2021-12-10T08:40:31.57") == dt.datetime(2021, 12, 10, 8, 40, 31, 570000, dt.timezone.utc)
    assert parse_timestamp("2017-06-13T09:25:43.153Z") == dt.datetime(2017, 6, 13, 9, 25, 43, 153000, dt.timezone.utc)
    assert parse_timestamp(None) is None


def test_history_entry_duration() -> None:
    """A finished history entry knows its duration in seconds; a running one does not."""
    done = HistoryEntry("r", "ViaApi", RefreshStatus.COMPLETED, start="2026-01-01T00:00:00Z", end="2026-01-01T00:10:00Z")
    running = HistoryEntry("r", "ViaApi", RefreshStatus.UNKNOWN, start="2026-01-01T00:00:00Z")
    assert done.duration_s == 600
    assert running.duration_s is None
