"""Notifiers against real receivers on loopback: an HTTP webhook server and an aiosmtpd SMTP server."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from _alert_receivers import SmtpReceiver, running

from pbi_taskflow.alerts import EmailNotifier, SlackNotifier, TeamsNotifier, notify_all
from pbi_taskflow.alerts.delivery import DeliveryError, post_json
from pbi_taskflow.alerts.templating import AlertTemplateError
from pbi_taskflow.client.models import RefreshResult, RefreshStatus
from pbi_taskflow.errors import ConfigurationError, RefreshFailedError, SecretExpiredError
from pbi_taskflow.testing.logcapture import LogCapture
from pbi_taskflow.testing.receivers import WebhookReceiver

pytestmark = pytest.mark.integration

PLANTED = "Planted-Client-Secret-7c1d"


class StubTI:
    """Plain stand-in for the runtime task instance of a failed try."""

    dag_id, task_id, run_id, map_index, try_number, max_tries = "nightly", "refresh", "manual__1", -1, 1, 0
    state = "failed"
    log_url = "http://localhost:8080/dags/nightly/runs/manual__1/tasks/refresh?try_number=1"

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        return None


def failure_context() -> dict[str, Any]:
    results = [
        RefreshResult(
            workspace_id="ws-1", workspace_name="Finance", dataset_id="ds-1", dataset_name="Sales",
            refresh_id="rid-1", kind="enhanced", status=RefreshStatus.FAILED, error_code="ModelRefreshFailed",
            error_message=f"Column X missing ({PLANTED})", web_url="https://app.powerbi.com/groups/ws-1/datasets/ds-1",
        ).to_dict(),
    ]
    return {"exception": RefreshFailedError("1 refresh failed", results=results), "ti": StubTI()}


SECRET_PATH = "/webhook/secret-path-token"


@pytest.fixture
def webhook(webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return webhook_receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with running(SmtpReceiver()) as receiver:
        yield receiver


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register the planted secret with Airflow's masker, as reading a connection does."""
    from airflow.sdk.log import mask_secret

    mask_secret(PLANTED)
    return PLANTED


def secret_url(receiver: WebhookReceiver) -> str:
    """The receiver's address with a secret-looking path, as real webhook URLs carry a signature."""
    return f"http://127.0.0.1:{receiver.port}{SECRET_PATH}"


def webhook_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, receiver: WebhookReceiver) -> None:
    conn = {"conn_type": "generic", "password": secret_url(receiver)}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def smtp_conn(monkeypatch: pytest.MonkeyPatch, port: int, **extra: Any) -> None:
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True,
                      "retry_limit": 0, "timeout": 5, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps(conn))


def test_teams_posts_card_with_facts(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, planted: str) -> None:
    """The Teams notifier posts one Adaptive Card naming the dataset, error, refresh id and links, without secrets."""
    webhook_conn(monkeypatch, "teams_test", webhook)
    TeamsNotifier("teams_test")(failure_context())
    [post] = webhook.posts
    assert post.path == SECRET_PATH
    card = post.json["attachments"][0]["content"]
    text = json.dumps(card)
    for expected in ("Finance / Sales", "ModelRefreshFailed", "Column X missing", "rid-1", "nightly", "manual__1",
                     "https://app.powerbi.com/groups/ws-1/datasets/ds-1", StubTI.log_url):
        assert expected in text
    assert planted not in text


def test_teams_card_shows_markdown_in_error_as_text(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Power BI error message with Markdown link syntax reaches Teams escaped, while our own links stay links."""
    from markdown_it import MarkdownIt

    webhook_conn(monkeypatch, "teams_test", webhook)
    context = failure_context()
    context["exception"].results[0]["error_message"] = "See [click](https://evil.example) **now**"
    TeamsNotifier("teams_test")(context)
    [post] = webhook.posts
    card = json.loads(post.body)["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for c in card["body"] if c["type"] == "Container"
             for i in c["items"] if i["type"] == "FactSet" for f in i["facts"]}
    html = MarkdownIt("commonmark").render(facts["Error"])
    assert "<a" not in html
    assert "<strong>" not in html
    assert "See [click](https://evil.example) **now**" in html
    urls = [a["url"] for c in card["body"] if c["type"] == "Container" for i in c["items"]
            if i["type"] == "ActionSet" for a in i["actions"]] + [a["url"] for a in card["actions"]]
    assert urls == ["https://app.powerbi.com/groups/ws-1/datasets/ds-1", StubTI.log_url]


def test_slack_posts_blocks(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Slack notifier posts fallback text and blocks with the failed dataset."""
    webhook_conn(monkeypatch, "slack_test", webhook)
    SlackNotifier("slack_test")(failure_context())
    [post] = webhook.posts
    body = post.json
    assert "Power BI refresh failed" in body["text"]
    assert "ModelRefreshFailed" in json.dumps(body["blocks"])


def test_webhook_url_from_extra_and_http_layout(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL may also live in extra webhook_url, or in schema/host/port/endpoint of an http connection."""
    monkeypatch.setenv("AIRFLOW_CONN_HOOK_EXTRA", json.dumps({"conn_type": "http", "extra": {"webhook_url": secret_url(webhook)}}))
    port = webhook.port
    monkeypatch.setenv("AIRFLOW_CONN_HOOK_PARTS", json.dumps(
        {"conn_type": "http", "schema": "http", "host": "127.0.0.1", "port": port, "extra": {"endpoint": "/parts"}}))
    TeamsNotifier("hook_extra")(failure_context())
    TeamsNotifier("hook_parts")(failure_context())
    assert [p.path for p in webhook.posts] == [SECRET_PATH, "/parts"]


def test_delivery_retries_429_and_5xx(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 (its Retry-After: 0 honoured) and a 500 are retried; the alert arrives exactly once."""
    with WebhookReceiver(statuses=[429, 500]) as webhook:
        webhook_conn(monkeypatch, "teams_test", webhook)
        waits: list[float] = []
        monkeypatch.setattr("time.sleep", waits.append)
        TeamsNotifier("teams_test")(failure_context())
    assert [p.status for p in webhook.posts] == [429, 500, 200]
    assert len(webhook.delivered) == 1
    assert waits == [0.0, 2.0]


def test_post_json_gives_up_and_never_leaks_url() -> None:
    """Waits are capped by max_wait; after the bounded attempts, DeliveryError names the answer, not the URL."""
    with WebhookReceiver(statuses=[503, 503, 503]) as webhook:
        waits: list[float] = []
        with pytest.raises(DeliveryError, match="gave up after 3 attempt") as info:
            post_json(secret_url(webhook), {"a": 1}, attempts=3, backoff=10, max_wait=5, sleep=waits.append)
    assert waits == [5, 5]
    assert "secret-path-token" not in str(info.value)
    assert "HTTP 503" in str(info.value)


def test_non_retryable_answer_is_not_retried() -> None:
    """A 400 answer is reported at once, without retrying."""
    with WebhookReceiver(statuses=[400]) as webhook, pytest.raises(DeliveryError, match="refused"):
        post_json(webhook.url, {}, attempts=4, sleep=lambda s: None)
    assert len(webhook.posts) == 1


def test_failed_delivery_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """When every attempt fails, the notifier logs an error without the URL and returns normally."""
    monkeypatch.setattr("time.sleep", lambda s: None)
    with WebhookReceiver(statuses=[500, 500]) as webhook, LogCapture().capturing() as logs:
        webhook_conn(monkeypatch, "teams_test", webhook)
        TeamsNotifier("teams_test", attempts=2)(failure_context())
    errors = [line.message for line in logs.lines if line.level == "error"]
    assert any("was not delivered" in e and "HTTP 500" in e for e in errors)
    assert "secret-path-token" not in logs.text()


def test_missing_connection_and_plain_http_are_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing connection or a non-loopback http:// URL logs a clear error instead of raising."""
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN_HTTP", json.dumps({"conn_type": "generic", "password": "http://example.com/x"}))
    with LogCapture().capturing() as logs:
        TeamsNotifier("no_such_conn")(failure_context())
        SlackNotifier("plain_http")(failure_context())
    text = logs.text()
    assert "no_such_conn" in text
    assert "http:// is accepted only for 127.0.0.1/localhost" in text


def test_broken_custom_template_fails_at_definition(tmp_path: Any) -> None:
    """A custom template with a syntax error is rejected when the notifier is created, naming file and line."""
    path = tmp_path / "card.json.j2"
    path.write_text('{\n"text": "{{ title }"\n}')
    with pytest.raises(AlertTemplateError, match=r"card\.json\.j2 line 2"):
        TeamsNotifier("teams_test", template=path)


def test_expired_secret_alert_names_app(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """An expired client secret gets its own text naming the app registration to fix."""
    webhook_conn(monkeypatch, "teams_test", webhook)
    exc = SecretExpiredError("AADSTS7000222: secret expired", client_id="app-1234", code="AADSTS7000222")
    TeamsNotifier("teams_test")({"exception": exc, "ti": StubTI()})
    text = json.dumps(webhook.posts[0].json)
    assert "Power BI authentication failed" in text
    assert "app registration app-1234" in text
    assert "federated" in text


def _check_email(message: Any, planted: str) -> None:
    assert message["Subject"] == "[Airflow] Power BI refresh failed: nightly.refresh"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Error code: ModelRefreshFailed" in text
    assert "rid-1" in html
    tags: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: Any) -> None:
            tags.append(tag)

    Collect().feed(html)
    assert {"html", "body", "table", "a"} <= set(tags)
    assert planted not in text
    assert planted not in html


def test_email_through_smtp_provider(smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch, planted: str) -> None:
    """With the SMTP provider installed, the email (text + HTML) reaches a real SMTP server."""
    smtp_conn(monkeypatch, smtp.port)
    EmailNotifier(to="ops@example.com, bi@example.com", conn_id="smtp_test")(failure_context())
    [message] = smtp.messages
    assert smtp.envelopes[0] == ("airflow@example.com", ["ops@example.com", "bi@example.com"])
    _check_email(message, planted)


def test_email_falls_back_to_smtplib(smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch, planted: str) -> None:
    """Without the SMTP provider, smtplib configured from the same connection delivers the email."""
    smtp_conn(monkeypatch, smtp.port)
    monkeypatch.setitem(sys.modules, "airflow.providers.smtp.hooks.smtp", None)
    EmailNotifier(to=["ops@example.com"], conn_id="smtp_test")(failure_context())
    [message] = smtp.messages
    _check_email(message, planted)


def test_email_requires_recipients() -> None:
    """An EmailNotifier without recipients is rejected when defined."""
    with pytest.raises(ConfigurationError, match="recipients"):
        EmailNotifier(to="", conn_id="smtp_test")


def test_notify_all_isolates_failures(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """notify_all runs every channel even when one raises."""
    webhook_conn(monkeypatch, "teams_test", webhook)

    def broken(context: Any) -> None:
        raise RuntimeError("broken channel")

    notify_all(broken, TeamsNotifier("teams_test"))(failure_context())
    assert len(webhook.posts) == 1


def test_dag_level_context_without_template_env(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DAG object lacking get_template_env (dag.test's SerializedDAG) does not stop templated titles."""
    webhook_conn(monkeypatch, "teams_test", webhook)

    class SerializedDagLike:
        dag_id = "nightly"
        render_template_as_native_obj = False

    context = {**failure_context(), "dag": SerializedDagLike(), "reason": "task_failure"}
    TeamsNotifier("teams_test", title="{{ ti.task_id }} broke")(context)
    assert webhook.posts[0].json["attachments"][0]["content"]["body"][0]["text"] == "refresh broke"


def test_success_alert_reads_return_value(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on_success_callback, the notifier reads the datasets from the return_value XCom."""
    webhook_conn(monkeypatch, "slack_test", webhook)
    done = RefreshResult(
        workspace_id="ws-1", workspace_name="Finance", dataset_id="ds-2", dataset_name="Inventory",
        refresh_id="rid-2", kind="standard", status=RefreshStatus.COMPLETED, duration_s=12.0,
    ).to_dict()

    class SuccessTI(StubTI):
        state = "success"

        def xcom_pull(self, task_ids: str, key: str) -> Any:
            return [done]

    SlackNotifier("slack_test")({"ti": SuccessTI()})
    body = webhook.posts[0].json
    assert body["blocks"][0]["text"]["text"] == "Power BI refresh succeeded"
    assert "Finance / Inventory" in json.dumps(body)


def test_events_filter_skips_other_events(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notifier limited to failures sends nothing for a retry."""
    webhook_conn(monkeypatch, "teams_test", webhook)

    class RetryTI(StubTI):
        state = "up_for_retry"

    TeamsNotifier("teams_test", events=["failure"])({**failure_context(), "ti": RetryTI()})
    TeamsNotifier("teams_test", events="failure")({**failure_context(), "ti": RetryTI()})
    assert webhook.posts == []
    with pytest.raises(ConfigurationError, match="Invalid events"):
        TeamsNotifier("teams_test", events=["sometimes"])


def test_async_notify_delivers(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """async_notify (used by the triggerer for Deadline Alerts) delivers the same message."""
    import asyncio

    webhook_conn(monkeypatch, "teams_test", webhook)
    asyncio.run(TeamsNotifier("teams_test").async_notify(failure_context()))
    assert len(webhook.delivered) == 1
