"""Local fake servers for the fenced-tasks suite: they record every connection they accept.

Nothing here listens beyond the loopback interface, and nothing a test does leaves the machine.
"""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import django
from aiosmtpd.controller import Controller

LARGE_BODY = b"x" * 50_000


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    server: FakeWebServer

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        path, _, query = self.path.partition("?")
        if path.startswith("/redirect"):
            # /redirect307?to=<url>: answer that status with Location <url>.
            status = int(path.removeprefix("/redirect") or 302)
            self._reply(status, b"moved", {"Location": unquote(query.removeprefix("to="))})
        elif path == "/loop":
            self._reply(302, b"again", {"Location": "/loop"})
        elif path == "/large":
            self._reply(200, LARGE_BODY)
        elif path == "/drip":
            # Each byte well inside any per-read timeout, the whole answer far beyond the total one.
            for byte in b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-Slow: " + b"y" * 40 + b"\r\n\r\nlate":
                if self.server.stop.wait(0.2):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        else:
            self._reply(200, b"reached")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def log_message(self, format, *args):  # keep test output quiet
        pass


class FakeWebServer(ThreadingHTTPServer):
    """An HTTP server on a loopback address that records every connection and request."""

    daemon_threads = True

    def __init__(self, host: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.connections: list[tuple] = []
        self.requests: list[dict] = []
        self.stop = threading.Event()
        super().__init__((host, 0), _Handler)
        self.host = host
        self.port = self.server_address[1]
        bracketed = f"[{host}]" if ":" in host else host
        self.base = f"http://{bracketed}:{self.port}"
        self.hostport = f"{bracketed}:{self.port}"

    def process_request(self, request, client_address):
        # Recorded before any HTTP is read: a client that only connects is seen too.
        self.connections.append(client_address)
        super().process_request(request, client_address)

    def __enter__(self) -> FakeWebServer:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()


class Inbox:
    """An aiosmtpd handler that keeps every envelope it accepts, and counts every connection."""

    def __init__(self) -> None:
        self.envelopes = []
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


def smtp_at(settings, port: int) -> None:
    """Django's SMTP backend, plain and without a login, to 127.0.0.1:port: in MAILERS from
    Django 6.1 on, in the EMAIL_* settings before (config/settings.py, "Email")."""
    options = {
        "host": "127.0.0.1",
        "port": port,
        "username": "",
        "password": "",
        "use_tls": False,
        "use_ssl": False,
        "timeout": 5,
    }
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}}
        return
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, options["timeout"]
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False


@contextmanager
def smtp_inbox(settings) -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 that Django's email settings (pytest-django's `settings`) point at."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp_at(settings, controller.port)
    settings.DEFAULT_FROM_EMAIL = "tempora@example.com"
    try:
        yield inbox
    finally:
        controller.stop()
