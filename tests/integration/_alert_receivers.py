"""An aiosmtpd SMTP server on loopback for the email alert tests (webhooks use the kit's ``webhook_receiver``)."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1 keeping every received message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                receiver.messages.append(message)  # type: ignore[arg-type]
                receiver.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=free_port, ready_timeout=5)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()



@contextmanager
def running(receiver: Any) -> Iterator[Any]:
    """Start a receiver for the duration of the block."""
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
