"""Loopback alert receivers for tests and the demo: a webhook (Teams/Slack) and an SMTP server.

Both bind ``127.0.0.1`` on a free port, run in a daemon thread, record what they receive and stop
on :meth:`stop` (or at the end of a ``with`` block). Only the standard library is used.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import socketserver
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ReceivedPost", "SmtpReceiver", "WebhookReceiver"]


@dataclass(frozen=True)
class ReceivedPost:
    """One request received by :class:`WebhookReceiver`.

    :param path: the request path.
    :param body: the raw body.
    :param status: the status code it was answered with.
    """

    path: str
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", errors="replace")


class _Receiver:
    _server: socketserver.BaseServer
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])  # type: ignore[attr-defined,index]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def _count(self) -> int:
        raise NotImplementedError

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` items arrived (or ``timeout`` seconds passed)."""
        deadline = time.monotonic() + timeout
        while self._count() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


class WebhookReceiver(_Receiver):
    """An HTTP server on 127.0.0.1 that records POSTed bodies (a stand-in for Teams or Slack).

    :param statuses: status codes to answer the first requests with (for example ``[429, 500]`` to
        exercise retries); later requests get 200.
    """

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[ReceivedPost] = []
        self._statuses = list(statuses or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver.posts.append(ReceivedPost(self.path, body, status))
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    def _count(self) -> int:
        return len([p for p in self.posts if p.status < 300])

    @property
    def url(self) -> str:
        """The webhook URL (``http://127.0.0.1:PORT/webhook``)."""
        return f"http://127.0.0.1:{self.port}/webhook"

    @property
    def delivered(self) -> list[ReceivedPost]:
        """The requests answered with success."""
        return [p for p in self.posts if p.status < 300]

    def airflow_conn_json(self) -> str:
        """An Airflow connection (JSON form) holding this receiver's URL, as the notifiers read it."""
        return json.dumps({"conn_type": "http", "password": self.url})


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpServer

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())
        self.wfile.flush()

    def handle(self) -> None:
        self._reply("220 localhost pbi_taskflow test SMTP")
        sender, recipients = "", list[str]()
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            command = raw.decode("utf-8", errors="replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250-localhost" if verb == "EHLO" else "250 localhost")
                if verb == "EHLO":
                    self._reply("250-8BITMIME")
                    self._reply("250 SMTPUTF8")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip(), list[str]()
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip())
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                lines: list[bytes] = []
                while True:
                    line = self.rfile.readline(1 << 20)
                    if not line or line in (b".\r\n", b".\n"):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                self.server.receiver._add(sender, recipients, message)
                self._reply("250 OK: queued")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            elif verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            else:
                self._reply("502 Command not implemented")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: SmtpReceiver


class SmtpReceiver(_Receiver):
    """A plain SMTP server on 127.0.0.1 that records every message (no TLS, no authentication)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
        server.receiver = self
        self._server = server

    def _add(self, sender: str, recipients: list[str], message: Any) -> None:
        with self._lock:
            self.envelopes.append((sender, recipients))
            self.messages.append(message)

    def _count(self) -> int:
        return len(self.messages)

    def airflow_conn_json(self, from_email: str = "airflow@example.com") -> str:
        """An Airflow SMTP connection (JSON form) for this server: plain text, no login."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": from_email, "timeout": 10},
            }
        )
