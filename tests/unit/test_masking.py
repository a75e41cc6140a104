"""Airflow's real secret masker, found by the one lookup every pbi_taskflow text goes through (run on each Airflow
version CI tests)."""

from __future__ import annotations

import logging

from pbi_taskflow.client.models import Handle, RefreshState, RefreshStatus
from pbi_taskflow.observability import redact
from pbi_taskflow.observability.redact import airflow_redact, masker, redact_text, register_secrets_with_airflow
from pbi_taskflow.observability.status_log import log_state

SECRET = "pbi-masking-check~Zq8sW2vN4xT7yB1e"


def test_this_airflow_has_a_masker_and_it_is_the_one_task_logs_use() -> None:
    """The lookup finds Airflow's masker on this Airflow; registering a secret makes its redact() hide it."""
    module = masker()
    assert module is not None
    assert register_secrets_with_airflow(SECRET) == 1
    assert SECRET not in str(module.redact(f"token {SECRET} here"))


def test_status_lines_and_alert_texts_hide_a_registered_secret(caplog) -> None:  # type: ignore[no-untyped-def]
    """A secret Power BI echoes in an error reaches neither a status line nor an alert text."""
    register_secrets_with_airflow(SECRET)
    assert SECRET not in airflow_redact(f"x {SECRET} y")
    assert SECRET not in (redact_text(f"Power BI said: {SECRET}") or "")
    handle = Handle("ws", "Sales", "ds", "Revenue", "r1", "standard", "2026-11-27T10:00:00+00:00")
    state = RefreshState(RefreshStatus.FAILED, error_code="Boom", error_message=f"source said {SECRET}")
    logger = logging.getLogger("test.masking")
    with caplog.at_level(logging.INFO, logger="test.masking"):
        log_state(logger, handle, state, elapsed_s=1.0)
    assert caplog.records
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_register_secrets_with_airflow_masks_values(mocker):
    """Non-empty values go to Airflow's masker; empty ones are skipped."""
    masked: list[str] = []
    fake = type("Masker", (), {"mask_secret": staticmethod(masked.append), "redact": staticmethod(str)})
    mocker.patch.object(redact, "masker", return_value=fake)
    assert register_secrets_with_airflow(SECRET, None, "", "other") == 2
    assert masked == [SECRET, "other"]


def test_register_secrets_without_airflow_is_a_no_op(mocker):
    """Without Airflow's masker nothing happens."""
    mocker.patch.object(redact, "masker", return_value=None)
    assert register_secrets_with_airflow(SECRET) == 0
