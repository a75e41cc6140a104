"""Microsoft Teams alerts: an Adaptive Card posted to a Workflows (or legacy incoming) webhook."""

from __future__ import annotations

from pbi_taskflow.alerts.base import WebhookNotifier

__all__ = ["TeamsNotifier", "send_teams_notification"]


class TeamsNotifier(WebhookNotifier):
    """Post an Adaptive Card about a Power BI refresh task to Microsoft Teams.

    The card names the DAG, task, run and try, each failed dataset with its workspace, Power BI error
    code and message and refresh id, and links to the Airflow task log and to each dataset.

    :param conn_id: Airflow connection whose password (or extra ``webhook_url``) is the Teams Workflows
        webhook URL ("Post to a channel when a webhook request is received"); default ``teams_default``.
    :param template: a Jinja2 file rendering the whole request body (JSON); default ``teams_card.json.j2``.
    :param title: headline of the card (Airflow-templated).
    :param events: only alert on these events (``failure``, ``retry``, ``success``); all when None.
    :param only_failed_datasets: list only the failed datasets.
    :param attempts: delivery tries (429 and 5xx answers are retried, honouring Retry-After).
    :param timeout: seconds for each HTTP request.
    """

    default_conn_id = "teams_default"
    default_template = "teams_card.json.j2"
    channel = "Teams"


send_teams_notification = TeamsNotifier
