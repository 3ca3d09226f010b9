"""Benchmark `kb report` on a generated tree of the original skill-tree shape.

Scenario: an adopted tree (kb init --adopt): topic folders at its root, knowledge files with
no front matter (`# Title`, a bold tagline, `## Overview`, `## Section N: ...`, `## Sources`
with relative links and web links), plans at `_ingest-auto/completed/expansion-*/ingestion.md`
with their bold-key drops beside them. Defaults: 1,200 Markdown files in all, of which 550
drops and 60 plans (the rest knowledge files). Target: under 2 s.

Measured: `collect_report` (what `kb report` runs) in this process, best and median of
--repeat runs, and `kb report --json` through the CLI once (process start and imports
included). Peer, in the same run: Python reading every file of the tree once
(`vs peer` = seconds / peer seconds), so a loaded machine inflates both alike.

    .venv/bin/python bench/bench_report.py [--files 1200] [--drops 550] [--plans 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kb.report.collect import collect_report
from kb.workspace import adopt_workspace

WORDS = ("gradient memory kernel tensor batch cache stream latency throughput shard compile graph "
         "profile allocator precision overlap bandwidth launch fusion checkpoint").split()


def _prose(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def knowledge_text(rng: random.Random, title: str, sections: int, others: list[str]) -> str:
    lines = [f"# {title}", "", f"**{_prose(rng, 10)}**", "", "## Overview", "", _prose(rng, 60), ""]
    for k in range(1, sections + 1):
        lines += [f"## Section {k}: {_prose(rng, 3)[:-1]}", "", _prose(rng, 80), ""]
        if k % 2:
            lines += ["```python", "import torch", f"x = torch.ones({k})", "print(x.sum())", "```", ""]
    lines += ["## Sources", "", "### Source Documents", ""]
    lines += [f"- [{Path(o).stem}](../{o}) - related" for o in rng.sample(others, min(2, len(others)))]
    lines += ["", "### Web Research", ""]
    lines += [f"- [Page {i}](https://example.org/{rng.randrange(10**6)}) - note (accessed 2025-01-31)" for i in range(4)]
    return "\n".join(lines) + "\n"


def plan_text(topic: str, parts: list[tuple[int, str]]) -> str:
    lines = [f"# Knowledge Expansion: {topic} ({len(parts)} runners in 1 batches)", "", "**Date**: 2025-01-31", "",
             "# BATCH 1: all", ""]
    for number, target in parts:
        lines += [f"## PART {number}: {target}", "", f"- [✓] PART {number}: Create {target} (Completed 2025-01-31 16:45)", "",
                  "**Step 2: Create Knowledge File**", "- [✓] Section 1: one", "- [✓] Section 2: two", ""]
    return "\n".join(lines) + "\n"


def build(root: Path, files: int, drops: int, plans: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    n_knowledge = files - drops - plans - 1  # and SKILL.md
    topics = [f"topic-{i:02d}" for i in range(max(1, n_knowledge // 40))]
    rels = [f"{topics[i % len(topics)]}/{i // len(topics):02d}-file-{i}.md" for i in range(n_knowledge)]
    for i, rel in enumerate(rels):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(knowledge_text(rng, f"File {i}", 4 + i % 5, rels))
    for p in range(plans):
        folder = root / "_ingest-auto" / "completed" / f"expansion-topic-{p:02d}-2025-01-31"
        folder.mkdir(parents=True)
        mine = list(range(p, drops, plans))  # every plan gets its share of the drops
        (folder / "ingestion.md").write_text(plan_text(f"topic {p}", [(k + 1, rels[d % len(rels)]) for k, d in enumerate(mine)]))
        for k, d in enumerate(mine):
            key = ("**Target File**", "**File**", "**File Created**", "**Target**")[d % 4]
            (folder / f"KNOWLEDGE-DROP-file-{d}-2025-01-31-1645.md").write_text(
                f"# KNOWLEDGE DROP: File {d}\n\n**Date**: 2025-01-31\n**Part**: {k + 1}\n{key}: `{rels[d % len(rels)]}` (120 lines)\n"
                "**Status**: COMPLETE ✓\n\n## What Was Created\n\nA file.\n")
    (root / "SKILL.md").write_text("---\nname: bench-skill\ndescription: A generated tree.\n---\n\n# Bench\n")
    return {"knowledge": n_knowledge, "drops": drops, "plans": plans}


def peer(root: Path) -> float:
    start = time.perf_counter()
    for path in root.rglob("*.md"):
        path.read_bytes()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1200)
    parser.add_argument("--drops", type=int, default=550)
    parser.add_argument("--plans", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-bench-report-") as tmp:
        root = Path(tmp) / "skill"
        root.mkdir()
        made = build(root, args.files, args.drops, args.plans)
        ws, _ = adopt_workspace(root)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            report = collect_report(ws)
            times.append(time.perf_counter() - start)
        totals = report.totals()
        base = min(peer(root) for _ in range(args.repeat))
        start = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "kb", "report", "--json"], cwd=root, capture_output=True, text=True)
        cli_s = time.perf_counter() - start
        print(f"tree: {made['knowledge']} knowledge files, {made['drops']} drops, {made['plans']} plans "
              f"({sum(made.values()) + 1} files)")
        linked = sum(len(f.drops) for f in report.files)
        print(f"report: {totals['files']} files, {linked} drops linked ({len(report.orphan_drops)} not), {len(report.plans)} plans read")
        print(f"kb report (collect_report): best {min(times):.2f} s, median {statistics.median(times):.2f} s "
              f"(vs peer {min(times) / base:.0f}x; peer: read every file once, {base:.3f} s)")
        print(f"kb report --json (CLI, process start included): {cli_s:.2f} s, exit {cli.returncode}")
        print(f"target: under 2 s: {'met' if min(times) < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
