"""How fast `kb serve` answers on trees of growing size (prints a table and the growth ratios).

    .venv/bin/python bench/bench_serve.py [--sizes 100,400] [--repeat 5]

Each tree has files of 8 sections (~60 lines each) with 3 code blocks and a results.json
entry per block. "cold" is the first request of a fresh Site (title cache and search index
empty); "warm" repeats it; "search after edit" touches one file and searches again (the
index is rebuilt); "build" writes the whole static site.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kb.records import KnowledgeMeta, write_knowledge
from kb.serve import Site, build_site
from kb.workspace import init_workspace

WORDS = (
    "kernel memory bandwidth tensor core occupancy stream overlap profiler timeline latency "
    "throughput batch gradient optimizer allocator fragmentation fusion compile graph"
).split()


def make_tree(root: Path, files: int) -> None:
    entries = []
    for n in range(files):
        topic = f"topic-{n % 8}"
        rel = f"knowledge/{topic}/{n:03d}-file-{n}.md"
        lines = [f"# File {n}: {WORDS[n % len(WORDS)]} notes", ""]
        for s in range(8):
            lines += [f"## Section {s + 1}: {WORDS[(n + s) % len(WORDS)]} {WORDS[(n * 7 + s) % len(WORDS)]}", ""]
            for p in range(6):
                lines.append(" ".join(WORDS[(n + s + p + k) % len(WORDS)] for k in range(40)) + ".")
                lines.append("")
            if s < 3:
                lines += ["```python", f"x = {n} + {s}", "print(x)", "```", ""]
        write_knowledge(root / rel, KnowledgeMeta(title=f"File {n}", engine="offline"), "\n".join(lines))
        text = (root / rel).read_text(encoding="utf-8").splitlines()
        fences = [i + 1 for i, line in enumerate(text) if line == "```python"]
        for index, line in enumerate(fences):
            entries.append({"id": f"{n}-{index}", "file": rel, "line": line, "index": index, "status": "pass", "seconds": 0.1})
    (root / "snippets" / "results.json").write_text(json.dumps({"version": 1, "snippets": entries}), encoding="utf-8")


def timed(fn, repeat: int = 1) -> float:
    """Median milliseconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure(files: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ws, _ = init_workspace(Path(tmp) / "ws")
        make_tree(ws.root, files)
        site = Site(ws.root)
        page = f"/knowledge/topic-1/{1:03d}-file-1.html"
        out: dict[str, float] = {}

        def get(path: str) -> None:
            assert site.get(path).status == 200, path

        out["home cold"] = timed(lambda: get("/"))
        out["home warm"] = timed(lambda: get("/"), repeat)
        out["knowledge page warm"] = timed(lambda: get(page), repeat)
        out["search cold (index build)"] = timed(lambda: get("/search.html?q=tensor+occupancy"))
        out["search warm"] = timed(lambda: get("/search.html?q=tensor+occupancy"), repeat)
        target = ws.root / "knowledge" / "topic-1" / "001-file-1.md"
        os.utime(target, ns=(time.time_ns(), time.time_ns()))
        out["search after edit"] = timed(lambda: get("/search.html?q=fusion+allocator"))
        out["plans page"] = timed(lambda: get("/plans.html"), repeat)
        out["static build (all pages)"] = timed(lambda: build_site(site, ws.root / "site"))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,400")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {n: measure(n, args.repeat) for n in sizes}
    names = list(results[sizes[0]])
    head = f"{'ms (median)':<28}" + "".join(f"{f'{n} files':>12}" for n in sizes)
    if len(sizes) > 1:
        head += f"{f'ratio {sizes[-1]}/{sizes[0]}':>16}"
    print(head)
    for name in names:
        row = f"{name:<28}" + "".join(f"{results[n][name]:>12.1f}" for n in sizes)
        if len(sizes) > 1:
            row += f"{results[sizes[-1]][name] / max(results[sizes[0]][name], 1e-9):>16.2f}"
        print(row)
    print(f"(file ratio {sizes[-1] / sizes[0]:.1f}x; python {sys.version.split()[0]})" if len(sizes) > 1 else "")


if __name__ == "__main__":
    main()
