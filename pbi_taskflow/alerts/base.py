"""The shared notifier machinery: context -> facts -> rendered message -> delivery, never raising.

Every pbi_taskflow notifier is an :class:`airflow.sdk.BaseNotifier`, usable as ``on_failure_callback``,
``on_retry_callback`` or ``on_success_callback`` on a task or a DAG, alone or in a list. A delivery
failure is logged as an error and swallowed, so the task's own outcome is never hidden.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from pbi_taskflow.alerts.delivery import post_json, webhook_url
from pbi_taskflow.alerts.facts import EVENTS, build_facts, results_from_context
from pbi_taskflow.alerts.templating import AlertTemplateError, Template, load_template
from pbi_taskflow.errors import ConfigurationError
from pbi_taskflow.observability.redact import redact_text

__all__ = ["AlertNotifier", "MultiNotifier", "WebhookNotifier", "notify_all", "results_from_context"]


class AlertNotifier(BaseNotifier):  # type: ignore[misc]
    """Base class of the pbi_taskflow notifiers; subclasses implement :meth:`deliver`.

    :param conn_id: the Airflow connection holding where to send (webhook URL, SMTP server).
    :param template: a Jinja2 template file path or built-in name replacing the default one.
    :param title: headline of the message (Airflow-templated, e.g. ``"{{ dag.dag_id }} failed"``); a
        default per event when None.
    :param events: only alert on these events (``failure``, ``retry``, ``success``); all when None.
    :param only_failed_datasets: list only the failed datasets instead of all of them.
    """

    template_fields: Sequence[str] = ("title",)
    default_template = ""
    template_format = "json"
    channel = "alert"

    def __init__(
        self,
        conn_id: str,
        *,
        template: str | Path | None = None,
        title: str | None = None,
        events: Iterable[str] | None = None,
        only_failed_datasets: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(conn_id, str) or not conn_id.strip():
            msg = f"Invalid conn_id {conn_id!r} for {type(self).__name__}: expected the id of an Airflow connection."
            raise ConfigurationError(msg)
        self.conn_id = conn_id
        self.title = title
        self.template = str(template) if template is not None else self.default_template
        self.only_failed_datasets = only_failed_datasets
        self.events = (events,) if isinstance(events, str) else tuple(events) if events is not None else EVENTS
        unknown = set(self.events) - set(EVENTS)
        if unknown:
            msg = f"Invalid events {sorted(unknown)} for {type(self).__name__}: expected some of {', '.join(EVENTS)}."
            raise ConfigurationError(msg)
        if template is not None:  # check a custom template at DAG parse; built-in ones are tested
            self.load(self.template, self.template_format)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r}, template={self.template!r})"

    @staticmethod
    def load(template: str, fmt: str) -> Template:
        """Load a template; a broken one raises :class:`AlertTemplateError` (at DAG parse for custom templates)."""
        return load_template(template, fmt)

    # --- Airflow entry points ------------------------------------------------------------------

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render ``template_fields``; tolerate a DAG without ``get_template_env`` (DAG-level callbacks in dag.test)."""
        if jinja_env is None:
            dag = context.get("dag") if isinstance(context, Mapping) else None
            if dag is not None and not callable(getattr(dag, "get_template_env", None)):
                jinja_env = self.get_template_env(dag=None)
        super().render_template_fields(context, jinja_env)

    def __call__(self, *args: Any) -> None:
        try:
            super().__call__(*args)
        except Exception as exc:  # noqa: BLE001 - an alert must never hide or replace the task's outcome
            self.log.error("%s alert via connection %r failed: %s", self.channel, self.conn_id, redact_text(str(exc)))

    def notify(self, context: Any) -> None:
        """Build the facts, render and deliver; log (never raise) on any failure."""
        secrets: tuple[str, ...] = ()
        try:
            facts = build_facts(context, title=self.title)
            if facts["event"] not in self.events:
                return
            if self.only_failed_datasets:
                facts["datasets"] = facts["failed"]
            secrets = self.secrets()
            self.deliver(facts)
        except AlertTemplateError as exc:
            self.log.error("%s alert not sent: %s", self.channel, exc)
        except Exception as exc:  # noqa: BLE001 - an alert must never hide or replace the task's outcome
            text = redact_text(f"{type(exc).__name__}: {exc}", secrets)
            self.log.error("%s alert via connection %r was not delivered: %s", self.channel, self.conn_id, text)
        else:
            self.log.info("%s alert sent via connection %r (%s).", self.channel, self.conn_id, facts["event"])

    async def async_notify(self, context: Any) -> None:
        """Deliver from an event loop (the triggerer, for Deadline Alerts): :meth:`notify` in a worker thread."""
        import asyncio

        await asyncio.to_thread(self.notify, context)

    # --- for subclasses ------------------------------------------------------------------------

    def secrets(self) -> tuple[str, ...]:
        """Strings to hide from log lines about this notifier (the webhook URL, a password)."""
        return ()

    def render(self, facts: Mapping[str, Any], template: str | None = None, fmt: str | None = None) -> str:
        """Render ``facts`` with this notifier's template (or another one)."""
        return self.load(template or self.template, fmt or self.template_format).render(dict(facts))

    def deliver(self, facts: dict[str, Any]) -> None:
        """Send the message built from ``facts``."""
        raise NotImplementedError


class WebhookNotifier(AlertNotifier):
    """A notifier that POSTs its rendered JSON template to a webhook URL read from an Airflow connection.

    :param conn_id: Airflow connection holding the webhook URL (see :mod:`pbi_taskflow.alerts.delivery`).
    :param attempts: delivery tries (429 and 5xx answers are retried, honouring Retry-After).
    :param timeout: seconds for each HTTP request.
    """

    default_conn_id = "webhook_default"

    def __init__(self, conn_id: str | None = None, *, attempts: int = 4, timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(conn_id or self.default_conn_id, **kwargs)
        self.attempts = attempts
        self.timeout = timeout

    def secrets(self) -> tuple[str, ...]:
        return (webhook_url(self.conn_id),)

    def deliver(self, facts: dict[str, Any]) -> None:
        payload = json.loads(self.render(facts))
        post_json(webhook_url(self.conn_id), payload, attempts=self.attempts, timeout=self.timeout)


class MultiNotifier(BaseNotifier):  # type: ignore[misc]
    """Several notifiers as one callback; each runs even when another fails.

    :param notifiers: notifiers or plain callbacks taking the context.
    """

    def __init__(self, *notifiers: Any) -> None:
        super().__init__()
        if not notifiers or not all(callable(n) for n in notifiers):
            msg = "MultiNotifier expects one or more notifiers (callables taking the Airflow context)."
            raise ConfigurationError(msg)
        self.notifiers = notifiers

    def __repr__(self) -> str:
        return f"MultiNotifier{self.notifiers!r}"

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render here; each notifier renders its own fields."""

    def notify(self, context: Any) -> None:
        for notifier in self.notifiers:
            try:
                notifier(context)
            except Exception as exc:  # noqa: BLE001 - one broken channel must not silence the others
                self.log.error("Notifier %r failed: %s", notifier, redact_text(str(exc)))

    def __call__(self, *args: Any) -> None:
        context = args[0] if len(args) == 1 else {}
        self.notify(context)


def notify_all(*notifiers: Any) -> MultiNotifier:
    """Compose several notifiers into one callback (a list of notifiers works too)."""
    return MultiNotifier(*notifiers)
