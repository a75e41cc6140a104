"""The loopback alert receivers: a webhook and an SMTP server that record what they get."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage

import requests


def test_webhook_receiver_records_json_posts_and_can_answer_errors_first():
    """Scripted statuses answer the first posts; every post is recorded with its JSON body."""
    from pbi_taskflow.testing.receivers import WebhookReceiver

    with WebhookReceiver(statuses=[429]) as receiver:
        first = requests.post(receiver.url, json={"n": 1}, timeout=5)
        second = requests.post(receiver.url, json={"n": 2}, timeout=5)
        assert (first.status_code, second.status_code) == (429, 200)
        assert [p.json for p in receiver.posts] == [{"n": 1}, {"n": 2}]
        assert [p.json for p in receiver.delivered] == [{"n": 2}]
        assert receiver.wait_for(1, timeout=1)
        assert json.loads(receiver.airflow_conn_json())["password"] == receiver.url


def test_smtp_receiver_records_messages(smtp_receiver):
    """A message sent with smtplib arrives parsed, with its envelope."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Refresh failed"
    message.set_content("Sales failed\n.leading dot line")
    with smtplib.SMTP("127.0.0.1", smtp_receiver.port, timeout=5) as client:
        client.send_message(message)
    assert smtp_receiver.wait_for(1, timeout=5)
    received = smtp_receiver.messages[0]
    assert received["Subject"] == "Refresh failed"
    assert ".leading dot line" in received.get_content()
    assert smtp_receiver.envelopes[0][1] == ["<b@example.com>"]
    assert json.loads(smtp_receiver.airflow_conn_json())["port"] == smtp_receiver.port


def test_webhook_receiver_fixture_is_running(webhook_receiver):
    """The fixture yields a started receiver."""
    assert requests.post(webhook_receiver.url, data=b"x", timeout=5).status_code == 200
    assert webhook_receiver.posts[0].text == "x"
