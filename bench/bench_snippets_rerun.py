"""Benchmark: `kb validate-snippets` rerun with nothing changed on a generated tree of 15,000 fences (issue 20).

    .venv/bin/python bench/bench_snippets_rerun.py            # 1,000 files x 15 fences
    .venv/bin/python bench/bench_snippets_rerun.py --files 100 # smaller, for a smoke run

The tree mixes what real knowledge trees hold: runnable Python (one kb:continue chain per file),
CUDA-only code, fragments, transcripts, shell, output, config, missing modules, marked skips.
A cold run fills the cache once; then the real CLI reruns it (``--json``, the table, ``-q``), each
timed as a subprocess: wall clock, and the CPU seconds the process used (user + system), which a
machine shared with other work inflates far less than the wall clock. Target: under 3 s for the rerun.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace

FENCES = [
    ("python", "import torch\n\ndef scale_{n}(t):\n    return t * {n}\n"),
    ("python kb:continue", "print(scale_{p}(torch.arange(3)).tolist())\n"),
    ("python", "import torch\nx = torch.ones({n}).cuda()\nprint(x.sum())\n"),
    ("bash", "pip install torch=={n}.0\n"),
    ("console", "$ nvidia-smi --query-gpu=name --format=csv\nname\nNVIDIA H100 80GB HBM3 #{n}\n"),
    ("text", "Epoch 1/{n}: loss=0.{n}\n"),
    ("python", "loss = model(batch_{n})\nloss.backward()\noptimizer.step()\n"),
    ("python", "import apex_not_installed_{m}\n"),
    ("yaml", "train:\n  batch_size: {n}\n  lr: 3e-4\n"),
    ("pycon", ">>> import torch\n>>> torch.ones({n}).shape\ntorch.Size([{n}])\n"),
    ('python kb:skip="needs 8 GPUs"', "import torch\nprint({n})\n"),
    ("json", '{{"fp16": {{"enabled": true}}, "n": {n}}}\n'),
    ("python", 'import torch.distributed as dist\ndist.init_process_group("nccl")\nprint({n})\n'),
    ("python", "$ torchrun --nproc_per_node=8 train.py --steps {n}\n"),
    ("python kb:requires=multi-gpu:8", "import torch\nprint(torch.cuda.device_count() + {n})\n"),
]


def write_tree(root: Path, files: int) -> int:
    """``files`` Markdown files of 15 fences each; returns the number of fences."""
    folder = root / "knowledge"
    count = 0
    for f in range(files):
        topic = folder / f"topic-{f // 50:02d}"
        topic.mkdir(parents=True, exist_ok=True)
        parts = [f"# File {f}\n\nSome prose about the topic.\n"]
        for i, (info, code) in enumerate(FENCES):
            n = f * len(FENCES) + i + 1
            # {p}: the fence before (a kb:continue uses its function); {m}: one of 50 missing modules
            parts.append(f"## Part {i}\n\nText before the block.\n\n```{info}\n{code.format(n=n, p=n - 1, m=n % 50)}```\n")
            count += 1
        (topic / f"{f:04d}-file.md").write_text("\n".join(parts), encoding="utf-8")
    return count


def cli(root: Path, *args: str) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one `kb validate-snippets` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kb", "validate-snippets", *args], cwd=root, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--keep", metavar="DIR", help="build the tree in DIR and keep it (for profiling)")
    args = parser.parse_args()
    out = Console(width=max(110, Console().width))
    with tempfile.TemporaryDirectory(prefix="kb-bench-rerun-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        ws, _ = init_workspace(base / "ws")
        fences = write_tree(ws.root, args.files)
        started = time.perf_counter()
        cold = run_validation(ws, Options())
        cold_s = time.perf_counter() - started
        statuses: dict[str, int] = {}
        for entry in cold.entries:
            statuses[entry.status] = statuses.get(entry.status, 0) + 1
        rows = [
            ("tree", f"{fences} fences in {args.files} files", ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))),
            ("cold run (in process)", f"{cold_s:.1f} s", f"{cold.ran} run"),
        ]
        for label, flags in (("rerun, --json", ("--json",)), ("rerun, table", ()), ("rerun, -q", ("-q",))):
            wall, cpu, code = cli(ws.root, *flags)
            rows.append((f"{label} (CLI)", f"{wall:.2f} s wall, {cpu:.2f} s CPU", f"exit {code}; target < 3 s"))
        wall, cpu, _ = cli(ws.root, "--help")
        rows.append(("  of which: the CLI starting (--help)", f"{wall:.2f} s wall, {cpu:.2f} s CPU", "imports kb, typer, rich"))
        started = time.perf_counter()
        warm = run_validation(ws, Options())
        rows.append(("rerun (in process)", f"{time.perf_counter() - started:.2f} s", f"{warm.ran} run, {warm.cached} cached"))
    table = Table(title="kb validate-snippets: rerun of an unchanged tree", title_justify="left")
    for name, justify in (("measure", "left"), ("value", "right"), ("note", "left")):
        table.add_column(name, justify=justify)
    for row in rows:
        table.add_row(*row)
    out.print(table)


if __name__ == "__main__":
    main()
