"""The live server: the stdlib's threading HTTP server answering GET/HEAD from a Site.

Only requests naming this server in their Host header are answered (a DNS-rebinding page
names its own domain there), connections that sit idle or trickle are dropped after a
timeout, and a client that goes away mid-answer is not an error worth a traceback.
"""

from __future__ import annotations

import socket
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kb.serve.site import SECURITY_HEADERS, Site

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# Connections the kernel queues before accept: a browser opening a page's assets, or a
# burst of readers, must not be refused (the stdlib's 5 dropped most of 200 at once).
BACKLOG = 256
# Seconds a connection may stay silent (idle keep-alive, or a request trickling in).
IDLE_TIMEOUT = 15.0
# Names every local server answers to, besides the --host it was given.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, socket.timeout)


class _Handler(BaseHTTPRequestHandler):
    server_version = "kb-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    site: Site
    log_requests: bool = False
    timeout = IDLE_TIMEOUT
    allowed_hosts: frozenset[str] = frozenset()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def handle(self) -> None:
        try:
            super().handle()
        except _GONE:
            self.close_connection = True  # the client left or went silent: nothing to tell it

    def _plain(self, status: int, text: str, head: bool) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if not head:
            self.wfile.write(body)

    def _host_ok(self) -> int:
        """200 when the Host header names this server; else the status to refuse with."""
        host = (self.headers.get("Host") or "").strip().lower()
        if not host:
            return 400
        return 200 if host in self.allowed_hosts else 421

    def _answer(self, head: bool) -> None:
        refused = self._host_ok()
        if refused != 200:
            self._plain(refused, "kb serve: this server answers only requests addressed to it "
                                 "(Host: 127.0.0.1, localhost or its --host)\n", head)
            return
        try:
            response = self.site.get(self.path)
        except Exception:  # our bug: say so on stderr, answer 500, keep serving
            traceback.print_exc(file=sys.stderr)
            self._plain(500, "kb serve: internal error (see the server's stderr)\n", head)
            return
        tag = response.headers.get("ETag")
        if tag and response.status == 200 and self.headers.get("If-None-Match") == tag:
            self.send_response(304)  # the browser's copy is current
            self.send_header("ETag", tag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in {**SECURITY_HEADERS, **response.headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if self.log_requests:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


class KbServer(ThreadingHTTPServer):
    request_queue_size = BACKLOG
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that disconnects is routine; anything else is a bug worth its traceback."""
        if isinstance(sys.exc_info()[1], _GONE):
            return
        super().handle_error(request, client_address)


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values this server answers: the local names and ``host``, with the port."""
    names = set(LOCAL_HOSTS)
    if host and host not in ("0.0.0.0", "::"):
        names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    else:
        names.add(socket.gethostname())  # bound to every address: the machine's own name too
    out = {f"{name.lower()}:{port}" for name in names}
    if port == 80:
        out |= {name.lower() for name in names}
    return frozenset(out)


def make_server(site: Site, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log: bool = False,
                idle_timeout: float = IDLE_TIMEOUT) -> KbServer:
    """A bound (not yet serving) server for ``site``; port 0 picks a free port (see ``server_address``)."""
    handler = type("KbHandler", (_Handler,), {"site": site, "log_requests": log, "timeout": idle_timeout})
    server = KbServer((host, port), handler)
    handler.allowed_hosts = allowed_hosts(host, server.server_address[1])
    return server
