"""Email alerts: an HTML + plain-text message sent through an Airflow SMTP connection.

With ``apache-airflow-providers-smtp`` installed, its ``SmtpHook`` opens and authenticates the SMTP
session (SSL/STARTTLS, OAuth2, retries as configured on the connection). Without it, ``smtplib`` is
configured from the same connection fields: ``host``, ``port``, ``login``, ``password`` and extras
``from_email``, ``disable_ssl``, ``disable_tls``, ``timeout``, ``ssl_context`` (``default`` or ``none``).
"""

from __future__ import annotations

import email.message
import email.utils
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pbi_taskflow.alerts.base import AlertNotifier
from pbi_taskflow.errors import ConfigurationError

__all__ = ["EmailNotifier", "send_email_notification"]


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _addresses(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    return [a.strip() for a in value if a and a.strip()]


def smtplib_send(conn: Any, message: email.message.EmailMessage) -> None:
    """Send ``message`` with ``smtplib``, configured from an Airflow SMTP connection (no provider needed)."""
    extra = conn.extra_dejson or {}
    use_ssl = not _flag(extra.get("disable_ssl", False))
    context = None if extra.get("ssl_context") == "none" else ssl.create_default_context()
    timeout = float(extra.get("timeout", 30))
    host, port = conn.host or "localhost", int(conn.port or (465 if use_ssl else 25))
    client: smtplib.SMTP
    if use_ssl:
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if not use_ssl and not _flag(extra.get("disable_tls", False)):
            client.starttls(context=context)
            client.ehlo()
        if conn.login and conn.password:
            client.login(conn.login, conn.password)
        client.send_message(message)


class EmailNotifier(AlertNotifier):
    """Email a Power BI refresh task's outcome (HTML with a plain-text alternative).

    :param to: recipient address(es): a list or a comma-separated string (Airflow-templated).
    :param conn_id: Airflow SMTP connection (type ``smtp``); default ``smtp_default``.
    :param from_email: sender; defaults to the connection's extra ``from_email``.
    :param subject: subject line (Airflow-templated); default ``[Airflow] <title>: <dag>.<task>``.
    :param cc: further recipients.
    :param template: the HTML template (path or built-in name); default ``email.html.j2``.
    :param text_template: the plain-text template; default ``email.txt.j2``.
    :param title: headline of the message (Airflow-templated).
    :param events: only alert on these events (``failure``, ``retry``, ``success``); all when None.
    :param only_failed_datasets: list only the failed datasets.
    """

    template_fields: Sequence[str] = ("title", "to", "cc", "subject", "from_email")
    default_template = "email.html.j2"
    template_format = "html"
    channel = "Email"

    def __init__(
        self,
        to: str | Iterable[str],
        conn_id: str = "smtp_default",
        *,
        from_email: str | None = None,
        subject: str | None = None,
        cc: str | Iterable[str] | None = None,
        text_template: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        if not _addresses(to):
            msg = f"Invalid recipients {to!r} for EmailNotifier: expected an address or a list of addresses."
            raise ConfigurationError(msg)
        self.to = to
        self.cc = cc
        self.from_email = from_email
        self.subject = subject
        self.text_template = str(text_template) if text_template is not None else "email.txt.j2"
        super().__init__(conn_id, **kwargs)
        if text_template is not None:
            self.load(self.text_template, "text")

    def _connection(self) -> Any:
        from pbi_taskflow.airflow.compat import get_connection

        return get_connection(self.conn_id)

    def secrets(self) -> tuple[str, ...]:
        password = self._connection().password
        return (password,) if password else ()

    def build_message(self, facts: dict[str, Any], sender: str) -> email.message.EmailMessage:
        """The MIME message (plain text + HTML alternative) for ``facts``."""
        message = email.message.EmailMessage()
        subject = self.subject or f"[Airflow] {facts['title']}: {facts['dag_id']}.{facts['task_id']}"
        message["Subject"] = " ".join(str(subject).split())
        message["From"] = sender
        message["To"] = ", ".join(_addresses(self.to))
        if _addresses(self.cc):
            message["Cc"] = ", ".join(_addresses(self.cc))
        message["Date"] = email.utils.formatdate(localtime=False)
        message["Message-ID"] = email.utils.make_msgid(domain="pbi-taskflow.local")
        message.set_content(self.render(facts, self.text_template, "text"))
        message.add_alternative(self.render(facts), subtype="html")
        return message

    def deliver(self, facts: dict[str, Any]) -> None:
        conn = self._connection()
        sender = self.from_email or (conn.extra_dejson or {}).get("from_email")
        if not sender:
            msg = f"EmailNotifier has no sender: pass from_email= or set extra 'from_email' on connection {self.conn_id!r}."
            raise ConfigurationError(msg)
        message = self.build_message(facts, sender)
        try:
            from airflow.providers.smtp.hooks.smtp import SmtpHook
        except ImportError:
            smtplib_send(conn, message)
            return
        with SmtpHook(smtp_conn_id=self.conn_id) as hook:
            client = getattr(hook, "_smtp_client", None)
            if client is None:  # pragma: no cover - a provider version without a session attribute
                smtplib_send(conn, message)
                return
            client.send_message(message)


send_email_notification = EmailNotifier
