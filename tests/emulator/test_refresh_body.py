"""Validation of refresh POST bodies (pure logic)."""

from __future__ import annotations

import pytest

from pbi_taskflow.emulator.refresh_body import BodyError, parse_refresh_body


def test_standard_bodies() -> None:
    """Empty bodies and notifyOption alone are standard refreshes."""
    for raw in (b"", b"{}", b'{"notifyOption": "NoNotification"}', b'{"notifyOption": "mailonfailure"}'):
        assert parse_refresh_body(raw).enhanced is False


def test_enhanced_body_is_canonicalised() -> None:
    """Enhanced fields are accepted case-insensitively and returned in canonical casing; timeout in seconds."""
    body = parse_refresh_body(b'{"type": "full", "commitMode": "partialBatch", "maxParallelism": 2, "retryCount": 1,'
                              b' "objects": [{"table": "T", "partition": "P"}], "applyRefreshPolicy": false,'
                              b' "effectiveDate": "2024-01-31", "timeout": "02:30:00"}')
    assert body.enhanced is True
    assert body.options["type"] == "Full"
    assert body.options["commitMode"] == "PartialBatch"
    assert body.options["objects"] == [{"table": "T", "partition": "P"}]
    assert body.timeout == 9000.0


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        pytest.param(b"[1]", "JSON object", id="not-object"),
        pytest.param(b"{", "not valid JSON", id="bad-json"),
        pytest.param(b'{"maxParallelism": 0}', "maxParallelism", id="parallelism"),
        pytest.param(b'{"retryCount": true}', "retryCount", id="retry-bool"),
        pytest.param(b'{"objects": []}', "objects", id="objects-empty"),
        pytest.param(b'{"timeout": "25:00:00"}', "24:00:00", id="timeout-too-long"),
        pytest.param(b'{"effectiveDate": "yesterday"}', "effectiveDate", id="date"),
        pytest.param(b'{"type": "Full", "notifyOption": "NoNotification"}', "notifyOption", id="mixed"),
    ],
)
def test_invalid_bodies_name_the_field(raw: bytes, fragment: str) -> None:
    """Invalid bodies raise BodyError naming the offending field."""
    with pytest.raises(BodyError, match=fragment):
        parse_refresh_body(raw)
