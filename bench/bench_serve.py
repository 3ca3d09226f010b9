"""`kb serve --build` and the live server on trees of 1,000 and 4,000 files (prints a table and the growth ratios).

    .venv/bin/python bench/bench_serve.py [--sizes 1000,4000] [--repeat 5]

Each file has 8 sections of prose, a table, links to its neighbours and 15 code blocks (a
results.json entry per block, some with output), in folders of 25 files under 8 topics, the
shape of the public skill trees kb adopts. Per size it prints: the cold build's time, the
site's size and its ratio to the Markdown it renders, the rebuild after editing one file,
and the live server's time for a knowledge page over HTTP (cold: first request of a fresh
server; warm: the median of the next ones). The last column is the 4,000/1,000 ratio; a site
that grows with the tree stays near the file ratio (4.0).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from kb.records import KnowledgeMeta, write_knowledge
from kb.serve import Site, build_site, make_server
from kb.serve.build import state_path
from kb.workspace import init_workspace

WORDS = (
    "kernel memory bandwidth tensor core occupancy stream overlap profiler timeline latency "
    "throughput batch gradient optimizer allocator fragmentation fusion compile graph warp "
    "shared register cache coalesced launch sync event nccl allreduce shard checkpoint"
).split()
FENCES = 15
PER_FOLDER = 25


def rel_of(n: int) -> str:
    return f"knowledge/topic-{n % 8}/sub-{n // (8 * PER_FOLDER)}/{n:05d}-file-{n}.md"


def body_of(n: int, files: int) -> str:
    def words(seed: int, count: int) -> str:
        return " ".join(WORDS[(seed * 7 + k * 3 + k * k) % len(WORDS)] for k in range(count))

    lines = [f"# File {n}: {WORDS[n % len(WORDS)]} notes", "", f"**{words(n, 8)}.**", "", "## Overview", ""]
    here = rel_of(n)
    for other in (n - 1, n + 1, n + 8):
        if 0 <= other < files:
            target = os.path.relpath(rel_of(other), os.path.dirname(here))
            lines.append(f"- See [{WORDS[other % len(WORDS)]} file {other}]({target}).")
    lines += ["", "| Setting | Effect | Notes |", "|---|---|---|"]
    lines += [f"| `{WORDS[(n + r) % len(WORDS)]}` | {words(n + r, 5)} | {words(n - r, 4)}<br>second line |" for r in range(4)]
    lines.append("")
    fence = 0
    for s in range(8):
        lines += [f"## Section {s + 1}: {WORDS[(n + s) % len(WORDS)]} {WORDS[(n * 7 + s) % len(WORDS)]}", ""]
        for p in range(4):
            lines += [words(n * 31 + s * 5 + p, 45) + ".", ""]
        for _ in range(2 if s < 7 else 1):
            lines += [
                "```python",
                "import time",
                f"def step_{fence}(x: int) -> int:",
                f'    """{words(n + fence, 6)}."""',
                f"    return x * {fence + 1} + {n}",
                "",
                "start = time.perf_counter()",
                f"print(step_{fence}({s}), time.perf_counter() - start >= 0)",
                "```",
                "",
            ]
            fence += 1
    return "\n".join(lines)


def make_tree(root: Path, files: int) -> int:
    """Write ``files`` knowledge files and their results.json; returns the Markdown's size in bytes."""
    entries = []
    size = 0
    for n in range(files):
        rel = rel_of(n)
        write_knowledge(root / rel, KnowledgeMeta(title=f"File {n}", engine="offline",
                                                  sections=[f"Section {s + 1}" for s in range(8)]), body_of(n, files))
        text = (root / rel).read_text(encoding="utf-8")
        size += len(text.encode("utf-8"))
        lines = text.splitlines()
        fences = [i + 1 for i, line in enumerate(lines) if line == "```python"]
        assert len(fences) == FENCES, (rel, len(fences))
        for index, line in enumerate(fences):
            status = ("pass", "pass", "skip", "fail")[index % 4]
            entries.append({
                "id": f"{n}-{index}", "file": rel, "line": line, "index": index, "status": status,
                "seconds": 0.1 if status != "skip" else None,
                "reason": "needs CUDA" if status == "skip" else None,
                "stdout_tail": f"{index} True\n" if status == "pass" else "",
                "stderr_tail": "Traceback (most recent call last):\nValueError: x\n" if status == "fail" else "",
            })
    (root / "snippets" / "results.json").write_text(json.dumps({"version": 1, "snippets": entries}), encoding="utf-8")
    (root / "INDEX.md").write_text(
        "# Index\n\n" + "".join(f"- [File {n}]({rel_of(n)})\n" for n in range(files)), encoding="utf-8"
    )
    return size


def tree_size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def get_ms(port: int, path: str) -> float:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
    finally:
        conn.close()
    return (time.perf_counter() - start) * 1000


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(files: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ws, _ = init_workspace(Path(tmp) / "ws")
        markdown = make_tree(ws.root, files)
        out_dir = ws.root / "site"
        row: dict[str, float] = {}
        start, cpu = time.perf_counter(), _cpu()
        result = build_site(Site(ws.root), out_dir)
        row["build, cold (s)"] = time.perf_counter() - start
        # CPU seconds of this process and its workers: what the build costs whatever else runs.
        row["build, cold (CPU s)"] = _cpu() - cpu
        row["pages written"] = len(result.pages)
        row["Markdown (MB)"] = markdown / 1e6
        row["site (MB)"] = tree_size(out_dir) / 1e6
        row["site / Markdown"] = row["site (MB)"] / row["Markdown (MB)"]
        row["build state (MB)"] = state_path(ws.root, out_dir.resolve()).stat().st_size / 1e6  # under .kb/, not published
        edited = ws.root / rel_of(files // 2)
        edited.write_text(edited.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
        start, cpu = time.perf_counter(), _cpu()
        again = build_site(Site(ws.root), out_dir)
        row["rebuild, 1 file edited (s)"] = time.perf_counter() - start
        row["rebuild, 1 file edited (CPU s)"] = _cpu() - cpu
        row["pages rewritten"] = len(again.pages)
        server = make_server(Site(ws.root), "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            port = server.server_address[1]
            page = "/" + rel_of(files // 3)[: -len(".md")] + ".html"
            row["live page, cold (ms)"] = get_ms(port, page)
            row["live page, warm (ms)"] = statistics.median(get_ms(port, page) for _ in range(repeat))
            row["live nav data (ms)"] = statistics.median(get_ms(port, "/_static/nav-data.js") for _ in range(repeat))
        finally:
            server.shutdown()
            server.server_close()
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for n in sizes:
        results[n] = measure(n, args.repeat)
        print(f"({n} files measured)", file=sys.stderr, flush=True)
    names = list(results[sizes[0]])
    head = f"{'':<30}" + "".join(f"{f'{n} files':>12}" for n in sizes)
    if len(sizes) > 1:
        head += f"{f'ratio {sizes[-1]}/{sizes[0]}':>16}"
    print(head)
    for name in names:
        row = f"{name:<30}" + "".join(f"{results[n][name]:>12.2f}" for n in sizes)
        if len(sizes) > 1:
            row += f"{results[sizes[-1]][name] / max(results[sizes[0]][name], 1e-9):>16.2f}"
        print(row)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"(file ratio {sizes[-1] / sizes[0]:.1f}x; {cores} cores; load average {os.getloadavg()[0]:.1f}; "
          f"python {sys.version.split()[0]})" if len(sizes) > 1 else "")


if __name__ == "__main__":
    main()
