"""The live server: the stdlib's threading HTTP server answering GET/HEAD from a Site."""

from __future__ import annotations

import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kb.serve.site import SECURITY_HEADERS, Site

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class _Handler(BaseHTTPRequestHandler):
    server_version = "kb-serve"
    sys_version = ""
    site: Site
    log_requests: bool = False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        try:
            response = self.site.get(self.path)
        except Exception:  # our bug: say so on stderr, answer 500, keep serving
            traceback.print_exc(file=sys.stderr)
            body = b"kb serve: internal error (see the server's stderr)\n"
            self.send_response(500)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
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


def make_server(site: Site, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log: bool = False) -> ThreadingHTTPServer:
    """A bound (not yet serving) server for ``site``; port 0 picks a free port (see ``server_address``)."""
    handler = type("KbHandler", (_Handler,), {"site": site, "log_requests": log})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
