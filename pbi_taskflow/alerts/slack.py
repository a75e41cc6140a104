"""Slack alerts: Block Kit blocks posted to an incoming webhook."""

from __future__ import annotations

from pbi_taskflow.alerts.base import WebhookNotifier

__all__ = ["SlackNotifier", "send_slack_notification"]


class SlackNotifier(WebhookNotifier):
    """Post a Block Kit message about a Power BI refresh task to a Slack incoming webhook.

    :param conn_id: Airflow connection whose password (or extra ``webhook_url``) is the Slack incoming
        webhook URL (``https://hooks.slack.com/services/...``); default ``slack_default``.
    :param template: a Jinja2 file rendering the whole request body (JSON with ``text`` and ``blocks``);
        default ``slack_blocks.json.j2``.
    :param title: headline of the message (Airflow-templated).
    :param events: only alert on these events (``failure``, ``retry``, ``success``); all when None.
    :param only_failed_datasets: list only the failed datasets.
    :param attempts: delivery tries (429 and 5xx answers are retried, honouring Retry-After).
    :param timeout: seconds for each HTTP request.
    """

    default_conn_id = "slack_default"
    default_template = "slack_blocks.json.j2"
    channel = "Slack"


send_slack_notification = SlackNotifier
