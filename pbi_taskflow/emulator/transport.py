"""The emulator's HTTPS listener: a threading ``http.server`` on 127.0.0.1 with TLS done per connection."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pbi_taskflow.emulator.wire import Request, Response

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
App = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pbi-taskflow-emulator"
    timeout = 30  # idle keep-alive connections end by themselves
    server: TLSServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request.parse(self.command, self.path, dict(self.headers.items()), body)
        response = self.server.app(request)
        if response.drop or self.server.closing:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _serve

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the emulator keeps its own request log)."""


class TLSServer(ThreadingHTTPServer):
    """A threading HTTP server bound to 127.0.0.1 that performs the TLS handshake in the worker thread.

    :param port: TCP port, 0 for any free port.
    :param context: the server-side TLS context.
    :param app: called with each :class:`Request`, returns the :class:`Response`.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, port: int, context: ssl.SSLContext, app: App) -> None:
        self.context = context
        self.app = app
        self.closing = False
        #: TLS handshakes completed and failed (each completed one is a new client connection).
        self.handshakes = 0
        self.handshake_failures = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _Handler)

    def close_all(self) -> None:
        """Stop accepting, then cut every open connection so no worker thread keeps serving."""
        self.closing = True
        self.shutdown()
        self.server_close()
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(15)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls
        with self._open_lock:
            self._open.add(request)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            with self._open_lock:
                self._open.discard(request)
                self.handshake_failures += 1
            return
        with self._open_lock:
            self.handshakes += 1
            self._open.discard(request)
            self._open.add(tls)
        try:
            _Handler(tls, client_address, self)
        finally:
            with self._open_lock:
                self._open.discard(tls)
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("emulator connection from %s ended with an error", client_address, exc_info=True)  # noqa: LOG014


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the given certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context

