"""A threaded loopback HTTP server with request counting and seeded fault injection."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("500", "429", "hang", "garbage", "reset")


@dataclass
class FaultPlan:
    """Which requests fail and how: a fixed queue first, then failures at ``rate`` drawn from a seeded RNG."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("500", "429", "hang")
    seed: int = 0
    retry_after: str = "0"
    queue: list[str] = field(default_factory=list)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next(self) -> str | None:
        with self._lock:
            if self.queue:
                return self.queue.pop(0)
            if self.rate and self._rng.random() < self.rate:
                return self._rng.choice(self.kinds)
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class LoopbackServer:
    """Base: subclasses implement ``handle(method, path, query, headers, body) -> (status, headers, bytes)``."""

    def __init__(self, faults: FaultPlan | None = None, hang_s: float = 30.0) -> None:
        self.faults = faults or FaultPlan()
        self.hang_s = hang_s
        self.counts: Counter[str] = Counter()  # by path
        self.faults_injected: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []
        self.inflight = 0
        self.max_inflight = 0  # most requests handled at once (per-host limits are checked with it)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                with owner._lock:
                    owner.counts[path] += 1
                    owner.log.append({"method": method, "path": path, "query": query, "headers": dict(self.headers), "body": body})
                    owner.inflight += 1
                    owner.max_inflight = max(owner.max_inflight, owner.inflight)
                try:
                    self._answer(method, path, query, body)
                finally:
                    with owner._lock:
                        owner.inflight -= 1

            def _answer(self, method: str, path: str, query: str, body: bytes) -> None:
                fault = owner.faults.next() if owner.fault_applies(path) else None
                if fault:
                    with owner._lock:
                        owner.faults_injected[fault] += 1
                    if owner.inject(self, fault):
                        return
                status, headers, payload = owner.handle(method, path, query, dict(self.headers), body)
                self.send_response(status)
                headers = {"Content-Length": str(len(payload)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- faults ---------------------------------------------------------------
    def fault_applies(self, path: str) -> bool:
        return True

    def inject(self, handler: BaseHTTPRequestHandler, fault: str) -> bool:
        """Send a faulty answer; True when nothing else should be sent."""
        if fault == "hang":
            self._stop.wait(self.hang_s)
            handler.close_connection = True
            return True
        if fault == "reset":
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if fault in ("500", "429", "503"):
            payload = json.dumps({"error": {"message": f"injected {fault}"}}).encode()
            handler.send_response(int(fault))
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            if fault == "429":
                handler.send_header("Retry-After", self.faults.retry_after)
            handler.end_headers()
            handler.wfile.write(payload)
            return True
        if fault == "garbage":
            payload = b'{"choices": [ {"message": oops not json'
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return True
        return False

    def handle(self, method: str, path: str, query: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        raise NotImplementedError

    # -- life -----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.faults_injected.clear()
            self.log.clear()

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def json_reply(data: Any, status: int = 200) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()
