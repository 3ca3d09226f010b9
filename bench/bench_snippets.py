"""Benchmark of `kb validate-snippets` (issue 6). Prints one table with ratios, all measured in this run.

    .venv/bin/python bench/bench_snippets.py            # 200 snippets in 20 files, warm rerun of 1,000
    .venv/bin/python bench/bench_snippets.py --quick    # smaller, for a smoke run

Compared on the same generated corpus (half the snippets `import torch` and do a small tensor op):
kb cold (warm pool, one fork per snippet), kb warm rerun (cache), a plain `python -c` subprocess per
snippet (measured on a sample, scaled to the corpus), and pytest-markdown-docs (one process for all
snippets, no isolation). pytest-markdown-docs is not a kb dependency: it is looked for in the venv,
else in .kb/bench/pmd (install it there with
`.venv/bin/pip install --target .kb/bench/pmd --no-deps pytest-markdown-docs==0.9.2 markdown-it-py==3.0.0`,
since it pins markdown-it-py<4, which kb cannot use).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kb.snippets import validate
from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace

REPO = Path(__file__).resolve().parents[1]
PMD_DIR = REPO / ".kb" / "bench" / "pmd"

TORCH = "import torch\nx = torch.randn(32, 32) * {k}\nprint(round(float((x @ x.T).trace()), 3) >= 0)\n"
PLAIN = "import math\nvalues = [math.sqrt(i) for i in range({n})]\nprint(len(values))\n"


def write_corpus(root: Path, files: int, per_file: int) -> tuple[list[Path], list[str]]:
    """``files`` Markdown files of ``per_file`` snippets each; every other snippet uses torch."""
    paths, codes = [], []
    folder = root / "knowledge" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in range(files):
        parts = [f"# Bench file {f}\n"]
        for s in range(per_file):
            code = TORCH.format(k=n + 1) if n % 2 == 0 else PLAIN.format(n=1000 + n)
            codes.append(code)
            parts.append(f"Snippet {s}.\n\n```python\n{code}```\n")
            n += 1
        path = folder / f"{f:03d}-bench.md"
        path.write_text("\n".join(parts), encoding="utf-8")
        paths.append(path)
    return paths, codes


def kb_cli(root: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kb", "validate-snippets", "--json", *args], cwd=root, capture_output=True, check=False)
    return time.perf_counter() - started


def cold_run(ws, confine: bool, **options):
    """A cold validation with the sandbox's confinement on or off (off only to measure its cost)."""
    real = validate.worker_config

    def config(*args, **kwargs):
        made = real(*args, **kwargs)
        made.confine = confine
        return made

    validate.worker_config = config
    try:
        started = time.perf_counter()
        outcome = run_validation(ws, Options(force=True, **options))
        return outcome, time.perf_counter() - started
    finally:
        validate.worker_config = real


def child_setup_cpu(confine: bool, tasks: int = 40) -> float:
    """Median CPU time a forked child spends isolating itself before the snippet runs (namespaces,
    mounts, limits, privileges, environment): the per-snippet cost of the sandbox that machine
    load does not inflate, since waiting for a CPU is not counted."""
    from kb.snippets.profiles import Profile
    from kb.snippets.sandbox.pool import Pool, SandboxTask

    config = validate.worker_config(Profile(name="bench", preimport=[]), 2, 0)
    config.confine = confine
    found: list[float] = []
    work = [SandboxTask(id=f"s{i}", message={"id": f"s{i}", "kind": "python", "snippets": [
        {"code": "pass", "filename": "b.md", "first_line": 1, "timeout": 30}]}) for i in range(tasks)]
    with Pool(config, 2) as pool:
        pool.run(work, lambda task, result, wall: found.append(result["trace_ms"]["child_setup_cpu_ms"]))
    return statistics.median(found) / 1000


def subprocess_per_snippet(codes: list[str]) -> list[float]:
    times = []
    for code in codes:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def pytest_markdown_docs(paths: list[Path], cwd: Path) -> tuple[float | None, str]:
    env = dict(os.environ)
    probe = subprocess.run([sys.executable, "-c", "import pytest_markdown_docs"], capture_output=True, env=env, check=False)
    if probe.returncode != 0 and PMD_DIR.is_dir():
        env["PYTHONPATH"] = str(PMD_DIR) + os.pathsep + env.get("PYTHONPATH", "")
        probe = subprocess.run([sys.executable, "-c", "import pytest_markdown_docs"], capture_output=True, env=env, check=False)
    if probe.returncode != 0:
        return None, f"not installed (see {Path(__file__).name}'s docstring)"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--markdown-docs",
         "-o", "addopts=", "--rootdir", str(cwd), *map(str, paths)],
        cwd=cwd, capture_output=True, text=True, env=env, check=False,
    )
    seconds = time.perf_counter() - started
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    return (seconds if proc.returncode == 0 else None), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--per-file", type=int, default=10)
    parser.add_argument("--warm", type=int, default=1000, help="snippets in the warm-rerun corpus")
    parser.add_argument("--sample", type=int, default=12, help="snippets of each half run as plain subprocesses")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved cold runs with isolation on and off")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.files, args.per_file, args.warm, args.sample, args.pairs = 4, 10, 200, 4, 1
    out = Console(width=max(110, Console().width))
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        ws, _ = init_workspace(Path(tmp) / "ws")
        paths, codes = write_corpus(ws.root, args.files, args.per_file)
        total = len(codes)

        # kb, cold: pool start + one fork per snippet; every result freshly computed. Isolation on
        # (what users get) and off, interleaved in pairs so both see the same load.
        ab: dict[bool, list[float]] = {True: [], False: []}
        serial_ab: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.pairs):
            for confine in (True, False):
                run, seconds = cold_run(ws, confine)
                assert all(e.status == "pass" for e in run.entries), [e.reason for e in run.entries if e.status != "pass"][:3]
                assert run.document["isolation"].get("complete") is confine, run.document["isolation"]
                ab[confine].append(statistics.median(e.wall_seconds - e.seconds for e in run.entries))
                if confine:
                    cold, kb_cold = run, seconds
                one, _ = cold_run(ws, confine, jobs=1, paths=[paths[0]])
                serial_ab[confine].append(statistics.median(e.wall_seconds - e.seconds for e in one.entries))
        torch_walls = [e.wall_seconds for e in cold.entries if "torch" in e.snippet.code]
        startup = cold.document["isolation"].get("worker_startup_seconds", 0.0)
        iso_cost = statistics.median(on - off for on, off in zip(ab[True], ab[False]))
        setup_on, setup_off = child_setup_cpu(True), child_setup_cpu(False)

        # kb, warm: the real CLI, everything from the cache.
        kb_warm = kb_cli(ws.root)

        # A subprocess per snippet, on a sample of each half.
        rng = random.Random(6)
        torch_codes = [c for c in codes if "torch" in c]
        plain_codes = [c for c in codes if "torch" not in c]
        sub_torch = subprocess_per_snippet(rng.sample(torch_codes, min(args.sample, len(torch_codes))))
        sub_plain = subprocess_per_snippet(rng.sample(plain_codes, min(args.sample, len(plain_codes))))
        sub_total = statistics.mean(sub_torch) * len(torch_codes) + statistics.mean(sub_plain) * len(plain_codes)

        pmd_seconds, pmd_line = pytest_markdown_docs(paths, ws.root)

        # Warm rerun of a larger corpus: cold once, then time the CLI.
        ws2, _ = init_workspace(Path(tmp) / "ws2")
        per = 10
        write_corpus(ws2.root, max(1, args.warm // per), per)
        started = time.perf_counter()
        big = run_validation(ws2, Options(force=True))
        big_cold = time.perf_counter() - started
        big_warm = kb_cli(ws2.root)
        big_n = len(big.entries)

    med = statistics.median
    rows += [
        ("corpus", f"{total} snippets in {args.files} files, {len(torch_walls)} import torch", ""),
        ("kb worker start-up (import torch once)", f"{startup:.2f} s", ""),
        ("kb cold, total", f"{kb_cold:.2f} s ({kb_cold / total * 1000:.1f} ms/snippet)", f"{os.cpu_count()} cores"),
        ("kb harness overhead/snippet, median (parallel)", f"{med(ab[True]) * 1000:.1f} ms", "isolation on, median of the pairs; target <= 10 ms"),
        ("  same, each of the pairs: isolation on", ", ".join(f"{x * 1000:.1f}" for x in ab[True]) + " ms", ""),
        ("  same, each of the pairs: isolation off", ", ".join(f"{x * 1000:.1f}" for x in ab[False]) + " ms", "A/B, same corpus, interleaved"),
        ("  isolation's cost per snippet (on - off)", f"{iso_cost * 1000:+.1f} ms", f"median of {args.pairs} pairs"),
        ("  child's set-up CPU time/snippet, isolation on", f"{setup_on * 1000:.2f} ms", f"off: {setup_off * 1000:.2f} ms (not inflated by load)"),
        ("kb harness overhead/snippet, median (--jobs 1)", f"{med(serial_ab[True]) * 1000:.1f} ms", f"isolation off: {med(serial_ab[False]) * 1000:.1f} ms"),
        ("kb wall/snippet, torch half, median", f"{med(torch_walls) * 1000:.1f} ms", ""),
        ("subprocess per snippet, torch half, median", f"{med(sub_torch) * 1000:.0f} ms", f"sample of {len(sub_torch)}"),
        ("subprocess per snippet, plain half, median", f"{med(sub_plain) * 1000:.0f} ms", f"sample of {len(sub_plain)}"),
        ("  ratio subprocess / kb (torch half)", f"{med(sub_torch) / med(torch_walls):.0f}x", "target >= 20x"),
        ("  ratio kb overhead / subprocess per snippet", f"{med(ab[True]) / med(sub_plain):.3f}", "the peer in this run"),
        ("subprocess per snippet, total (scaled)", f"{sub_total:.1f} s", f"{sub_total / kb_cold:.1f}x kb cold"),
        ("pytest-markdown-docs, total", f"{pmd_seconds:.2f} s" if pmd_seconds else "n/a", pmd_line[:60]),
    ]
    if pmd_seconds:
        rows.append(("  ratio pytest-markdown-docs / kb cold", f"{pmd_seconds / kb_cold:.2f}x", "target >= 1 (kb no slower)"))
    rows += [
        ("kb warm rerun (CLI, all cached)", f"{kb_warm:.2f} s", f"{total} snippets"),
        (f"kb cold, {big_n} snippets", f"{big_cold:.1f} s", ""),
        (f"kb warm rerun, {big_n} unchanged (CLI)", f"{big_warm:.2f} s", "target < 2 s"),
    ]
    table = Table(title="kb validate-snippets benchmark", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("note")
    for row in rows:
        table.add_row(*row)
    out.print(table)


if __name__ == "__main__":
    main()
