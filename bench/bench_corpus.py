"""How long the offline engine's corpus takes: cold build, rebuild after a tree change, warm load, one PART.

    .venv/bin/python bench/bench_corpus.py

Builds the default corpus (torch docstrings + knowledge tree) in a scratch workspace
and prints a table. Targets: cold build well under 60 s on 2 cores, warm load < 1 s.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from kb.corpus.index import load_corpus
from kb.engine.factory import build_engine
from kb.engine.types import ContextDoc, WriteRequest
from kb.plan import load_plan
from kb.plan.edit import set_part_status
from kb.workspace import init_workspace, open_workspace

REPO = Path(__file__).resolve().parents[1]


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws, _ = init_workspace(Path(tmp) / "ws")
        # The shipped plan (in plans/completed/ once run), as a fresh run sees it: every PART pending.
        shipped = next(p for p in (REPO / "plans" / "performance.md", REPO / "plans" / "completed" / "performance.md")
                       if p.exists())
        plan = ws.plans_dir / "performance.md"
        shutil.copy(shipped, plan)
        set_part_status(plan, {p.number: "pending" for p in load_plan(plan).parts})
        rows = []
        index, cold = timed(lambda: load_corpus(ws, rebuild=True))
        rows.append(("cold build (torch docstrings + index)", cold, f"{len(index)} documents"))
        _, warm = timed(lambda: load_corpus(ws))
        rows.append(("warm load (unchanged inputs)", warm, ""))
        (ws.knowledge_dir / "notes.md").write_text("# Notes\n\n## Memory\n\nPinned memory speeds up host to device copies.\n")
        _, rebuild = timed(lambda: load_corpus(open_workspace(ws.root)))
        rows.append(("rebuild after a knowledge change", rebuild, "package docstrings from cache"))
        engine = build_engine(ws)
        engine.researcher.corpus()
        plan = load_plan(ws.plans_dir / "performance.md")
        for number in (5, 6, 7, 8):
            part = plan.part(number)
            context = [ContextDoc(path=r.path, note=r.note, text=None) for r in part.reads]

            def one():
                research = asyncio.run(engine.researcher.research(part, context))
                request = WriteRequest(plan.title, plan.topic, "plans/performance.md", part, context, research)
                return asyncio.run(engine.writer.write(request))

            draft, seconds = timed(one)
            covered = sum(1 for s in part.sections if f"## Section {s.number}: {s.title}\n\n*Planned" in draft.body
                          and "has no passage relevant" not in draft.body.split(f"## Section {s.number}:")[1].split("## ")[0])
            rows.append((f"research + write PART {number}", seconds, f"{covered}/{len(part.sections)} sections sourced, {len(draft.sources)} sources"))
    width = max(len(r[0]) for r in rows)
    print(f"{'step'.ljust(width)}  seconds  note")
    for name, seconds, note in rows:
        print(f"{name.ljust(width)}  {seconds:7.2f}  {note}")
    print(f"\ncold build vs 60 s budget: {cold / 60:.2f}x; warm load vs cold build: {warm / cold:.3f}x")


if __name__ == "__main__":
    main()
