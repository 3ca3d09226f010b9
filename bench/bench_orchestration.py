"""Benchmark the run-plan orchestration's own overhead (LangGraph fan-out + SQLite checkpoints + drops + ticks).

Scenario: a generated plan with one batch of 16 PARTs; a researcher that answers at once and a
writer that sleeps 0.5 s per PART (asyncio.sleep, like waiting on a model); 4 runners. Ideal:
16 x 0.5 / 4 = 2.0 s. Measured: ``kb.runner.run.run_unit`` end to end on a fresh workspace:
opening ``.kb/checkpoints.sqlite``, compiling the graph, every step checkpointed (durability
"sync"), 16 knowledge files, 16 drops, 16 plan ticks. Target: within 10% of ideal.

    .venv/bin/python bench/bench_orchestration.py [--parts 16] [--sleep 0.5] [--runners 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kb.engine.check import check_draft
from kb.engine.types import ContextDoc, Draft, Passage, Research, WriteRequest
from kb.plan import load_plan
from kb.plan.model import Part
from kb.records import SourceRef
from kb.runner.run import RunOptions, run_unit
from kb.runner.select import Unit
from kb.runner.state import RunContext
from kb.workspace import init_workspace

TARGET_RATIO = 1.10


def plan_text(parts: int) -> str:
    lines = [f"# Knowledge Expansion: Bench ({parts} runners in 1 batch)", "", "**Date**: 2025-11-14", "",
             f"# BATCH 1: Everything (PARTs 1-{parts})", ""]
    for n in range(1, parts + 1):
        lines += [f"## PART {n}: Topic {n} (~700 lines)", "", f"- [ ] PART {n}: Create bench/{n:02d}-topic-{n}.md", "",
                  "**Step 0: Check Existing Knowledge**", "- [ ] Read bench/missing.md (not there)", "",
                  "**Step 1: Web Research**", f'- [ ] Search: "topic {n}"', "",
                  "**Step 2: Create Knowledge File**"]
        lines += [f"- [ ] Section {s}: Subject {n}.{s} (details)" for s in range(1, 5)]
        lines += ["", "**Step 3: Create KNOWLEDGE DROP**", f"- [ ] Create KNOWLEDGE-DROP-topic-{n}-2025-11-14-[TIME].md", ""]
    return "\n".join(lines) + "\n"


class InstantResearcher:
    name = "bench"

    async def research(self, part: Part, context: list[ContextDoc]) -> Research:
        source = SourceRef(id=1, title="Bench source", kind="doc", locator="bench.source")
        passage = Passage(kind="doc", locator=source.locator, title=source.title, text="A passage.")
        return Research(by_section={s.number: [passage] for s in part.sections}, sources=[source])


class SleepingWriter:
    engine = "bench"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def write(self, request: WriteRequest) -> Draft:
        await asyncio.sleep(self.seconds)
        body = [f"# {request.part.title}", ""]
        for s in request.part.sections:
            body += [f"## Section {s.number}: {s.title}", "", f"What the source says about {s.title} [1].", ""]
        body += ["## Sources", "", "1. Bench source (`bench.source`)"]
        return Draft(title=request.part.title, body="\n".join(body) + "\n", sources=list(request.research.sources),
                     engine="bench")


async def one_run(root: Path, parts: int, sleep: float, runners: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all threads) of one run; the writer's sleeps use no CPU."""
    ws, _ = init_workspace(root)
    (ws.plans_dir / "bench.md").write_text(plan_text(parts), encoding="utf-8")
    context = RunContext(workspace=ws, researcher=InstantResearcher(), writer=SleepingWriter(sleep), check=check_draft)
    unit = Unit(plan="plans/bench.md", label="BATCH 1", batch=1)
    started, cpu = time.perf_counter(), time.process_time()
    outcome = await run_unit(ws, unit, context, RunOptions(runners=runners))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    done = sum(p.status == "done" for p in load_plan(ws.plans_dir / "bench.md").parts)
    if outcome.summary["counts"]["done"] != parts or done != parts:
        raise SystemExit(f"bench run broken: {outcome.summary['counts']}, {done} ticked")
    return seconds, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ideal = args.parts * args.sleep / args.runners
    runs = []
    with tempfile.TemporaryDirectory(prefix="kb-bench-orch-") as tmp:
        asyncio.run(one_run(Path(tmp) / "warmup", 2, 0.01, 2))  # imports, first SQLite open
        for i in range(args.repeat):
            runs.append(asyncio.run(one_run(Path(tmp) / f"run{i}", args.parts, args.sleep, args.runners)))
    times = [wall for wall, _ in runs]
    cpu = {wall: used for wall, used in runs}
    best, median = min(times), statistics.median(times)
    table = Table(title=f"run-plan orchestration: {args.parts} PARTs x {args.sleep} s writer, {args.runners} runners",
                  title_justify="left")
    for name in ("measure", "seconds", "ideal", "ratio", "overhead / PART", "CPU s", "target"):
        table.add_column(name, justify="right" if name != "measure" else "left")
    for label, value in (("best", best), ("median", median), ("worst", max(times))):
        table.add_row(label, f"{value:.3f}", f"{ideal:.3f}", f"{value / ideal:.3f}",
                      f"{(value - ideal) / args.parts * 1000:.1f} ms", f"{cpu[value]:.3f}", f"<= {TARGET_RATIO:.2f}")
    Console().print(table)
    print(f"runs: {', '.join(f'{t:.3f}' for t in times)} s")
    ok = median / ideal <= TARGET_RATIO
    print(f"ratio (median / ideal) = {median / ideal:.3f}: {'within' if ok else 'OVER'} the {TARGET_RATIO - 1:.0%} target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
