"""A failing Power BI refresh DAG under dag.test, against the emulator, with every channel on loopback receivers."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _alert_receivers import SmtpReceiver, running

from pbi_taskflow.testing.receivers import WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ERROR = "Column 'Region' not found in table 'Sales'"


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with running(SmtpReceiver()) as receiver:
        yield receiver


@pytest.fixture
def channels(
    webhook_receiver: WebhookReceiver, smtp: SmtpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Teams and Slack connections on two webhook receivers, an SMTP connection, and a SQLite refresh log."""
    with WebhookReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_TEAMS_TEST", webhook_receiver.airflow_conn_json())
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_TEST", slack.airflow_conn_json())
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True, "retry_limit": 0}}))
        log_db = tmp_path / "refresh_log.db"
        monkeypatch.setenv("AIRFLOW_CONN_LOG_DB", json.dumps({"conn_type": "sqlite", "host": str(log_db)}))
        yield {"teams": webhook_receiver, "slack": slack, "smtp": smtp, "log_db": log_db}


def failing_dag(dag_id: str) -> Any:
    from airflow.sdk import dag

    from pbi_taskflow import powerbi_refresh
    from pbi_taskflow.alerts import EmailNotifier, SlackNotifier, TeamsNotifier

    @dag(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False)
    def nightly() -> None:
        @powerbi_refresh(
            workspace="Finance",
            poll_interval=0.2,
            max_poll_interval=0.5,
            refresh_log_conn_id="log_db",
            on_failure_callback=[
                TeamsNotifier("teams_test"),
                SlackNotifier("slack_test"),
                EmailNotifier(to="bi-oncall@example.com", conn_id="smtp_test"),
            ],
        )
        def refresh_finance() -> list[str]:
            return ["Sales", "Inventory"]

        refresh_finance()

    return nightly()


def test_failing_refresh_alerts_every_channel_once(emulator: Any, pbi_connection: str, run_dag: Any,
                                                   channels: dict[str, Any]) -> None:
    """Each notifier fires once with the failed dataset's facts; logs, XCom and alerts never show the secret."""
    secret = emulator.client_secret
    emulator.add_workspace("Finance")
    emulator.add_dataset("Finance", "Sales", duration=0.3, outcome="Failed", error_code="ModelRefreshFailed",
                         error_message=ERROR)
    emulator.add_dataset("Finance", "Inventory", duration=0.3)
    emulator.inject("history", "throttle", count=1, retry_after=1)

    result = run_dag(failing_dag("alerts_failing"))

    assert result.task_states["refresh_finance"] == "failed"
    teams, slack, smtp = channels["teams"], channels["slack"], channels["smtp"]
    assert len(teams.delivered) == 1
    assert len(slack.delivered) == 1
    assert len(smtp.messages) == 1

    card = teams.delivered[0].json["attachments"][0]["content"]
    card_text = json.dumps(card)
    for expected in ("Finance / Sales", "ModelRefreshFailed", ERROR, "alerts_failing",
                     "refresh_finance", "Open task log in Airflow", "Open in Power BI"):
        assert expected in card_text, expected
    slack_text = json.dumps(slack.delivered[0].json)
    assert "ModelRefreshFailed" in slack_text
    html = smtp.messages[0].get_body(preferencelist=("html",)).get_content()
    assert "ModelRefreshFailed" in html
    assert "Inventory" in html

    logs = result.logs("refresh_finance")
    assert "Power BI refresh state:" in logs
    assert "status=Failed" in logs
    assert "Power BI throttled:" in logs
    assert "Power BI refresh summary:" in logs

    rows = sqlite3.connect(channels["log_db"]).execute(
        "SELECT dataset_name, status, error_code FROM pbi_refresh_log ORDER BY dataset_name").fetchall()
    assert rows == [("Inventory", "Completed", None), ("Sales", "Failed", "ModelRefreshFailed")]

    alerts = [card_text, slack_text, html, smtp.messages[0].get_body(preferencelist=("plain",)).get_content()]
    for text in [*alerts, logs, json.dumps(result.xcom("refresh_finance"), default=str)]:
        assert secret not in text
    assert teams.url not in logs  # webhook URLs carry a signature: never logged
    assert slack.url not in logs


def retrying_dag(dag_id: str) -> Any:
    from airflow.sdk import dag

    from pbi_taskflow import powerbi_refresh
    from pbi_taskflow.alerts import EmailNotifier, SlackNotifier, TeamsNotifier

    @dag(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False,
         on_failure_callback=SlackNotifier("slack_test", title="DAG {{ dag.dag_id }} failed"))
    def nightly() -> None:
        @powerbi_refresh(
            workspace="Finance",
            poll_interval=0.2,
            max_poll_interval=0.5,
            retries=1,
            retry_delay=dt.timedelta(seconds=0),
            on_retry_callback=TeamsNotifier("teams_test"),
            on_failure_callback=EmailNotifier(to="bi-oncall@example.com", conn_id="smtp_test"),
        )
        def refresh_finance() -> list[str]:
            return ["Sales"]

        refresh_finance()

    return nightly()


def test_retry_and_dag_level_notifiers(emulator: Any, pbi_connection: str, run_dag: Any,
                                       channels: dict[str, Any]) -> None:
    """on_retry fires once on try 1, on_failure once on try 2, and a DAG-level notifier works under dag.test."""
    emulator.add_workspace("Finance")
    emulator.add_dataset("Finance", "Sales", duration=0.2, outcome="Failed", error_code="ModelRefreshFailed",
                         error_message=ERROR)

    result = run_dag(retrying_dag("alerts_retrying"))

    assert result.task_states["refresh_finance"] == "failed"
    teams, slack, smtp = channels["teams"], channels["slack"], channels["smtp"]
    [retry_post] = teams.delivered
    retry_card = json.dumps(retry_post.json)
    assert "Power BI refresh failed, will retry" in retry_card
    assert '"value": "1 of 2"' in retry_card
    [message] = smtp.messages
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Power BI refresh failed\n")
    assert "Try:  2 of 2" in text
    [dag_post] = slack.delivered
    assert dag_post.json["blocks"][0]["text"]["text"] == "DAG alerts_retrying failed"


def succeeding_dag(dag_id: str) -> Any:
    from airflow.sdk import dag

    from pbi_taskflow import powerbi_refresh
    from pbi_taskflow.alerts import TeamsNotifier

    @dag(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False)
    def nightly() -> None:
        @powerbi_refresh(
            workspace="Finance",
            poll_interval=0.2,
            max_poll_interval=0.5,
            refresh_log_conn_id="down_db",
            on_success_callback=TeamsNotifier("teams_test"),
        )
        def refresh_finance() -> list[str]:
            return ["Inventory"]

        refresh_finance()

    return nightly()


def test_success_alert_and_down_refresh_log(emulator: Any, pbi_connection: str, run_dag: Any,
                                            channels: dict[str, Any], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A successful task stays successful when the refresh log is down, and its success alert lists the XCom results."""
    missing = tmp_path / "no" / "such" / "dir" / "log.db"
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_DB", json.dumps({"conn_type": "sqlite", "host": str(missing)}))
    emulator.add_workspace("Finance")
    emulator.add_dataset("Finance", "Inventory", duration=0.2)

    result = run_dag(succeeding_dag("alerts_succeeding"))

    assert result.task_states["refresh_finance"] == "success"
    assert "Refresh log: could not write 1 row(s) to table 'pbi_refresh_log' through connection 'down_db'" in (
        result.logs("refresh_finance"))
    [post] = channels["teams"].delivered
    card = json.dumps(post.json)
    assert "Power BI refresh succeeded" in card
    assert "Finance / Inventory" in card
