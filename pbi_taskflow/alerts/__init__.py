"""Failure, retry and success alerts for Power BI refresh tasks: Microsoft Teams, Slack and email.

Each notifier is an Airflow ``BaseNotifier``, usable as ``on_failure_callback``, ``on_retry_callback``
or ``on_success_callback`` on a task or a DAG; pass several in a list, or compose them with
:func:`notify_all`. Where to send comes from Airflow connections, never from code.
"""

from __future__ import annotations

from pbi_taskflow.alerts.base import AlertNotifier, MultiNotifier, WebhookNotifier, notify_all
from pbi_taskflow.alerts.email import EmailNotifier, send_email_notification
from pbi_taskflow.alerts.facts import build_facts, results_from_context
from pbi_taskflow.alerts.slack import SlackNotifier, send_slack_notification
from pbi_taskflow.alerts.teams import TeamsNotifier, send_teams_notification
from pbi_taskflow.alerts.templating import AlertTemplateError

__all__ = [
    "AlertNotifier",
    "AlertTemplateError",
    "EmailNotifier",
    "MultiNotifier",
    "SlackNotifier",
    "TeamsNotifier",
    "WebhookNotifier",
    "build_facts",
    "notify_all",
    "results_from_context",
    "send_email_notification",
    "send_slack_notification",
    "send_teams_notification",
]
