"""Benchmark the run-plan orchestration's own overhead (LangGraph fan-out + SQLite checkpoints + drops + ticks).

Scenario: a generated plan with one batch of 16 PARTs; a researcher that answers at once and a
writer that sleeps 0.5 s per PART (asyncio.sleep, like waiting on a model); 4 runners. Ideal:
16 x 0.5 / 4 = 2.0 s. Measured: ``kb.runner.run.run_unit`` end to end on a fresh workspace:
opening ``.kb/checkpoints.sqlite``, compiling the graph, each finished PART checkpointed,
16 knowledge files, 16 drops, 16 plan ticks (all flushed to disk before the tick). Target:
within 10% of ideal.

Peers, measured in the same run: the same fan-out in bare LangGraph (one ``Send`` per PART
to a six-node subgraph whose write node sleeps, nothing else): without a checkpointer; with
an AsyncSqliteSaver checkpointing every step of every subgraph (durability "sync"); and
with the saver laid out as kb lays it out (the batch graph checkpointed, each finished
PART saved as it lands, the subgraph without a checkpointer of its own). What kb adds is
the gap between that last peer and kb.

    .venv/bin/python bench/bench_orchestration.py [--parts 16] [--sleep 0.5] [--runners 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import operator
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, TypedDict

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from rich.console import Console
from rich.table import Table

from kb.engine.check import check_draft
from kb.engine.types import ContextDoc, Draft, Passage, Research, WriteRequest
from kb.plan import load_plan
from kb.plan.model import Part
from kb.records import SourceRef
from kb.runner.run import DURABILITY, RunOptions, run_unit
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


class PeerBatch(TypedDict, total=False):
    parts: list[int]
    done: Annotated[list[int], operator.add]


class PeerTask(TypedDict, total=False):
    part: int
    done: Annotated[list[int], operator.add]


def bare_graph(sleep: float, checkpointer=None, per_part: bool = False):
    """The peer: select -> one Send per PART -> a six-step subgraph (one step sleeps) -> END;
    ``per_part``: the subgraph has no checkpointer of its own (kb's layout)."""

    async def step(state: PeerTask) -> dict:
        return {}

    async def write(state: PeerTask) -> dict:
        await asyncio.sleep(sleep)
        return {}

    async def last(state: PeerTask) -> dict:
        return {"done": [state["part"]]}

    sub = StateGraph(PeerTask)
    names = ["context", "research", "write", "check", "drop", "tick"]
    for name in names:
        sub.add_node(name, write if name == "write" else last if name == "tick" else step)
    sub.add_edge(START, names[0])
    for a, b in zip(names, names[1:]):
        sub.add_edge(a, b)
    sub.add_edge(names[-1], END)
    g = StateGraph(PeerBatch)
    async def select(state: PeerBatch) -> dict:
        return {}

    g.add_node("select", select)
    g.add_node("runner", sub.compile(checkpointer=False) if per_part else sub.compile())
    g.add_edge(START, "select")
    g.add_conditional_edges("select", lambda s: [Send("runner", {"part": n}) for n in s["parts"]], ["runner"])
    g.add_edge("runner", END)
    return g.compile(checkpointer=checkpointer)


async def peer_run(root: Path, parts: int, sleep: float, runners: int, checkpoint: str | None) -> tuple[float, float]:
    """Wall and CPU seconds of the bare-LangGraph peer; ``checkpoint``: None, "every step" or "per PART"."""
    root.mkdir(parents=True, exist_ok=True)
    config = {"configurable": {"thread_id": "bench"}, "max_concurrency": runners}
    started, cpu = time.perf_counter(), time.process_time()
    if checkpoint:
        per_part = checkpoint == "per PART"
        async with aiosqlite.connect(root / "peer.sqlite") as conn:
            await conn.execute("PRAGMA synchronous=NORMAL")
            graph = bare_graph(sleep, AsyncSqliteSaver(conn), per_part=per_part)
            out = await graph.ainvoke({"parts": list(range(parts))}, config, durability=DURABILITY if per_part else "sync")
    else:
        out = await bare_graph(sleep).ainvoke({"parts": list(range(parts))}, config)
    if sorted(out["done"]) != list(range(parts)):
        raise SystemExit("peer run broken")
    return time.perf_counter() - started, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ideal = args.parts * args.sleep / args.runners
    peers = {"LangGraph alone": None, "LangGraph + SQLite, every step": "every step", "LangGraph + SQLite, per PART": "per PART"}
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in [*peers, "kb run-plan"]}
    with tempfile.TemporaryDirectory(prefix="kb-bench-orch-") as tmp:
        asyncio.run(one_run(Path(tmp) / "warmup", 2, 0.01, 2))  # imports, first SQLite open
        for i in range(args.repeat):  # interleaved, so machine noise hits every row alike
            base = Path(tmp) / f"run{i}"
            for n, (name, checkpoint) in enumerate(peers.items()):
                gc.collect()  # each row starts on a clean heap, not with the garbage of the row before
                measured[name].append(asyncio.run(peer_run(base / f"p{n}", args.parts, args.sleep, args.runners, checkpoint)))
            gc.collect()
            measured["kb run-plan"].append(asyncio.run(one_run(base / "kb", args.parts, args.sleep, args.runners)))
    table = Table(title=f"run-plan orchestration: {args.parts} PARTs x {args.sleep} s writer, {args.runners} runners "
                        f"(median of {args.repeat}; ideal {ideal:.2f} s)", title_justify="left")
    for name in ("run", "seconds", "ratio to ideal", "overhead / PART", "CPU s", "runs"):
        table.add_column(name, justify="left" if name in ("run", "runs") else "right")
    medians = {}
    for name, runs in measured.items():
        wall = statistics.median(w for w, _ in runs)
        medians[name] = wall
        table.add_row(name, f"{wall:.3f}", f"{wall / ideal:.3f}", f"{(wall - ideal) / args.parts * 1000:.1f} ms",
                      f"{statistics.median(c for _, c in runs):.3f}", ", ".join(f"{w:.2f}" for w, _ in runs))
    Console().print(table)
    kb, peer = medians["kb run-plan"], medians["LangGraph + SQLite, per PART"]
    print(f"kb / LangGraph + SQLite per PART = {kb / peer:.3f} (what kb's stages, drops, ticks and files add)")
    ok = kb / ideal <= TARGET_RATIO
    print(f"ratio (median / ideal) = {kb / ideal:.3f}: {'within' if ok else 'OVER'} the {TARGET_RATIO - 1:.0%} target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
