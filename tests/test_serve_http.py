"""kb serve over real HTTP on 127.0.0.1: raw traversal requests, headers, HEAD, and the CLI."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from kb.serve import Site, make_server
from test_serve_site import make_demo_workspace


@pytest.fixture
def served(tmp_path):
    yield from _serving(make_demo_workspace(tmp_path))


def _serving(root):
    """The workspace ``root`` served on a free loopback port: yields (root, port), then shuts the server down."""
    server = make_server(Site(root), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def request(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send ``path`` exactly as given (no client-side normalisation) and return status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw_request(port: int, target: str) -> bytes:
    """A request line written by hand on a socket, for targets http.client would refuse."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "path",
    [
        "/../../etc/passwd",
        "/knowledge/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "/knowledge/%252e%252e/kb.toml",
        "/knowledge/..%2fkb.toml",
        "/knowledge/..%5c..%5ckb.toml",
        "/knowledge/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/knowledge/%00.html",
        "/.git/config",
        "/kb.toml",
        "/etc/passwd",
    ],
)
def test_traversal_over_http_is_404(served, path):
    root, port = served
    status, _, body = request(port, path)
    assert status == 404
    assert b"root:" not in body and b"[run]" not in body


def test_absolute_form_and_backslash_targets_are_404(served):
    _, port = served
    for target in ("http://127.0.0.1/../../etc/passwd", "/knowledge/..\\..\\kb.toml", "/..;/..;/etc/passwd"):
        reply = raw_request(port, target)
        assert reply.startswith(b"HTTP/1.0 404") or reply.startswith(b"HTTP/1.1 404"), (target, reply[:40])
        assert b"root:" not in reply


def test_symlink_out_is_404_over_http(served, tmp_path):
    root, port = served
    secret = tmp_path / "secret.txt"
    secret.write_text("secret-token-456", encoding="utf-8")
    (root / "knowledge" / "performance" / "leak.png").symlink_to(secret)
    (root / "knowledge" / "performance" / "leak.md").symlink_to(secret)
    for path in ("/knowledge/performance/leak.png", "/knowledge/performance/leak.html"):
        status, _, body = request(port, path)
        assert status == 404 and b"secret-token-456" not in body


def test_pages_headers_head_and_redirect(served):
    root, port = served
    status, headers, body = request(port, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert b"https://" not in body.split(b"<main")[0]  # the layout pulls nothing from the network
    status, headers, body = request(port, "/knowledge/performance/00-gpu-profiling.html", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    status, headers, _ = request(port, "/knowledge/performance/00-gpu-profiling.md")
    assert status == 302 and headers["Location"] == "/knowledge/performance/00-gpu-profiling.html"
    status, headers, css = request(port, "/_static/kb.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and b".highlight" in css
    assert b"@import" not in css and b"url(http" not in css


def test_image_next_to_a_knowledge_file_is_served(served):
    root, port = served
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    (root / "knowledge" / "performance" / "timeline.png").write_bytes(png)
    path = root / "knowledge" / "performance" / "01-gpu-utilization.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n![timeline](timeline.png)\n", encoding="utf-8")
    status, headers, body = request(port, "/knowledge/performance/timeline.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and body == png
    _, _, page = request(port, "/knowledge/performance/01-gpu-utilization.html")
    assert b'<img src="timeline.png" alt="timeline"' in page


def test_cli_serves_on_127_0_0_1_and_refuses_a_busy_port(tmp_path):
    root = make_demo_workspace(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", "serve", "--port", "0", "--json", "-w", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("}")):
            lines.append(proc.stdout.readline())
        info = json.loads("".join(lines))
        assert info["host"] == "127.0.0.1" and info["url"] == f"http://127.0.0.1:{info['port']}/"
        status, _, body = request(info["port"], "/plans.html")
        assert status == 200 and b"BATCH 1: Profiling" in body
        busy = subprocess.run(
            [sys.executable, "-m", "kb", "serve", "--port", str(info["port"]), "-w", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert busy.returncode == 2 and "cannot listen on 127.0.0.1" in busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_build_writes_where_it_is_told_and_refuses_dangerous_targets(tmp_path, kb_cli):
    root = make_demo_workspace(tmp_path)
    result = kb_cli("serve", "--build", str(tmp_path / "out"), "-w", str(root))
    assert result.code == 0 and (tmp_path / "out" / "index.html").is_file()  # outside the workspace, as told
    for target in (root, tmp_path, root / "knowledge" / "x"):
        refused = kb_cli("serve", "--build", str(target), "-w", str(root))
        assert refused.code == 2 and "choose an empty folder" in refused.err, refused.err
        assert len(refused.err.strip().splitlines()) == 1
    assert not (root / "knowledge" / "x").exists()
    result = kb_cli("serve", "--build", "site", "-w", str(root), cwd=root)
    assert result.code == 0 and "Wrote" in result.out
    assert (root / "site" / "index.html").is_file()
    help_text = kb_cli("serve", "--help").out
    for option in ("--port", "--host", "--open", "--build"):
        assert option in help_text


def request_with_host(port: int, host: str | None, path: str = "/") -> tuple[int, bytes]:
    """GET ``path`` with the Host header given (None: no Host header at all)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"GET {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "") + "Connection: close\r\n\r\n"
        sock.sendall(head.encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    reply = b"".join(chunks)
    return int(reply.split(b" ", 2)[1]), reply


def test_only_requests_addressed_to_this_server_are_answered(served):
    """A DNS-rebinding page sends its own domain as Host: it gets no page (issue 25, item 8)."""
    _, port = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        status, reply = request_with_host(port, host)
        assert status == 200 and b"Knowledge Index" in reply, host
    for host in ("evil.com", f"evil.com:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}", f"127.0.0.1.evil.com:{port}", ""):
        status, reply = request_with_host(port, host, "/knowledge/performance/00-gpu-profiling.html")
        assert status in (400, 421), (host, status)
        assert b"GPU Profiling" not in reply and b"elapsed" not in reply
    status, _ = request_with_host(port, None)
    assert status == 400


def test_the_host_given_with_host_is_answered_too(tmp_path):
    from kb.serve.server import allowed_hosts

    assert "localhost:8765" in allowed_hosts("127.0.0.1", 8765)
    assert "192.168.1.5:9000" in allowed_hosts("192.168.1.5", 9000)
    assert "192.168.1.5:9001" not in allowed_hosts("192.168.1.5", 9000)
    assert "kb.example:80" in allowed_hosts("kb.example", 80) and "kb.example" in allowed_hosts("kb.example", 80)
    assert "[::1]:8765" in allowed_hosts("::1", 8765)


def test_a_burst_of_connections_waits_in_the_backlog(tmp_path):
    """150 clients that connect before the server accepts any are all queued and answered
    (the stdlib's backlog of 5 left the rest retrying SYNs until they timed out; issue 25, item 9)."""
    from concurrent.futures import ThreadPoolExecutor

    root = make_demo_workspace(tmp_path)
    server = make_server(Site(root), "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(150)]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()

        def one(sock):
            with sock:
                sock.settimeout(10)
                sock.sendall(f"GET /plans.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            return b"".join(chunks).split(b" ", 2)[1]

        with ThreadPoolExecutor(max_workers=16) as pool:
            assert list(pool.map(one, socks)) == [b"200"] * 150
    finally:
        server.shutdown()
        server.server_close()


def test_idle_and_trickling_connections_are_dropped(tmp_path):
    root = make_demo_workspace(tmp_path)
    server = make_server(Site(root), "127.0.0.1", 0, idle_timeout=0.5)
    assert server.request_queue_size >= 128
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1")  # and never the rest
        started = time.monotonic()
        assert idle.recv(100) == b"" and slow.recv(100) == b""  # closed by the server
        assert time.monotonic() - started < 5
        idle.close()
        slow.close()
        # a kept-alive connection that goes quiet after its answer is closed too
        alive = socket.create_connection(("127.0.0.1", port), timeout=10)
        alive.sendall(f"GET /plans.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        got = b""
        while b"</html>" not in got:
            got += alive.recv(65536)
        started = time.monotonic()
        assert alive.recv(100) == b"" and time.monotonic() - started < 5
        alive.close()
    finally:
        server.shutdown()
        server.server_close()


def test_clients_that_leave_early_print_no_traceback(tmp_path):
    import struct

    root = make_demo_workspace(tmp_path)
    log = tmp_path / "serve.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", "serve", "--port", "0", "--json", "-w", str(root)],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("}")):
            lines.append(proc.stdout.readline())
        port = json.loads("".join(lines))["port"]
        for n in range(30):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET /knowledge/performance/00-gpu-profiling.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            if n % 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not close
            sock.close()
        status, _, _ = request(port, "/plans.html")
        assert status == 200  # still serving
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    err = log.read_text(encoding="utf-8")
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err


@pytest.fixture
def served_gaps(tmp_path):
    from test_serve_site import add_rendering_gaps

    yield from _serving(add_rendering_gaps(make_demo_workspace(tmp_path)))


def test_rendering_gaps_over_http(served_gaps):
    """Issue 22's rendering gaps, as a browser receives them from the live server."""
    _, port = served_gaps
    status, headers, body = request(port, "/knowledge/performance/02-rendering.html")
    assert status == 200
    article = body.split(b'<article class="markdown">')[1].split(b"</article>")[0]
    assert b"<td>first line<br>second line</td>" in article and b"<details>" in article and b"<sup>2</sup>" in article
    for bad in (b"<script", b"onerror", b"onclick", b"javascript:", b"<iframe", b'src=""'):
        assert bad not in article, bad
    assert b'<span class="unresolved" title="image not in this site: no-such-image.png">' in article
    assert b'<span class="unresolved" title="image not in this site: missing.png">missing.png</span>' in article
    assert b'<a class="unresolved" title="not in this site: gone.md">' in article
    assert b"<img" not in article.replace(b'<img src="diagram.png" alt="', b"")  # only the image that is there
    assert b'title="not in this site: ../images-only/"' in article
    # linked files of the tree are there, as text, and can run nothing
    for name in ("train.py", "run.sh", "job.slurm", "Makefile", "Dockerfile", "run"):
        status, headers, data = request(port, f"/knowledge/performance/{name}")
        assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8" and data, name
        assert headers["Content-Security-Policy"].startswith("sandbox") and headers["X-Content-Type-Options"] == "nosniff"
    status, headers, data = request(port, "/knowledge/performance/diagram.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert request(port, "/knowledge/performance/evil.html")[0] == 404
    assert request(port, "/knowledge/images-only/index.html")[0] == 404
    assert request(port, "/knowledge/images-only")[0] == 404
    # a name with '%' has its page, and INDEX.md's link to it works
    status, _, home = request(port, "/")
    assert b'href="knowledge/performance/50%25-faster.html"' in home
    status, _, page = request(port, "/knowledge/performance/50%25-faster.html")
    assert status == 200 and b"Fifty percent faster" in page
    status, headers, _ = request(port, "/knowledge/performance/50%25-faster.md")
    assert status == 302 and headers["Location"] == "/knowledge/performance/50%25-faster.html"


def test_the_tree_script_is_revalidated_not_resent(served):
    root, port = served
    status, headers, body = request(port, "/_static/nav-data.js")
    assert status == 200 and headers["Cache-Control"] == "no-cache" and b"00-gpu-profiling.html" in body
    tag = headers["ETag"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/_static/nav-data.js", headers={"If-None-Match": tag})
        response = conn.getresponse()
        assert response.status == 304 and response.read() == b""
    finally:
        conn.close()
    (root / "knowledge" / "cuda" / "01-new.md").write_text("# Brand new file\n", encoding="utf-8")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/_static/nav-data.js", headers={"If-None-Match": tag})
        response = conn.getresponse()
        assert response.status == 200 and b"Brand new file" in response.read()
    finally:
        conn.close()


def test_the_build_state_is_neither_in_the_site_nor_served(served):
    from kb.serve import build_site
    from kb.serve.build import state_path

    root, port = served
    out = root / "site"
    build_site(Site(root), out)
    state = state_path(root, out.resolve())
    assert state.is_file() and not any(p.name.startswith(".") for p in out.rglob("*"))
    rel = state.relative_to(root).as_posix()
    for path in ("/" + rel, "/site/.kb-site.json", "/.kb-site.json", "/.kb/", "/%2ekb/" + state.name):
        assert request(port, path)[0] == 404, path
