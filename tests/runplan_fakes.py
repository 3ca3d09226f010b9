"""Test doubles for `kb run-plan`: a researcher and a writer that need no corpus, controlled by env vars.

Used in-process (``make_engine(ws, delay=...)``) and by subprocess tests through the
documented hook ``kb run-plan ... --engine runplan_fakes:make_engine`` (with this
folder on PYTHONPATH). Environment variables, read by ``make_engine``:

- ``KB_FAKE_DELAY``: seconds the writer sleeps per write (default 0).
- ``KB_FAKE_LOG``: a file the writer appends ``write <part> <attempt>`` / ``done <part>`` lines to.
- ``KB_FAKE_FAIL``: comma-separated PART numbers whose writer raises (a writer error).
- ``KB_FAKE_BAD``: PARTs whose first draft misses a section (the check sends it back once).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kb.engine.check import check_draft
from kb.engine.types import ContextDoc, Draft, Passage, Research, WriteRequest
from kb.plan.model import Part
from kb.records import SourceRef


def _parts(value: str | None) -> set[int]:
    return {int(x) for x in (value or "").replace(" ", "").split(",") if x}


class FakeResearcher:
    name = "fake"

    async def research(self, part: Part, context: list[ContextDoc]) -> Research:
        source = SourceRef(id=1, title="Fake docs", kind="doc", locator="fake.module.function")
        by_section = {
            s.number: [Passage(kind="doc", locator=source.locator, title=source.title, text=f"About {s.title}.")]
            for s in part.sections
        }
        return Research(by_section=by_section, sources=[source])


@dataclass
class FakeWriter:
    delay: float = 0.0
    log: Path | None = None
    fail: set[int] = field(default_factory=set)
    bad: set[int] = field(default_factory=set)  # first draft misses a section
    always_bad: set[int] = field(default_factory=set)
    transient: dict[int, int] = field(default_factory=dict)  # PART -> how many calls raise ConnectionError first
    sync_sleep: bool = False  # time.sleep instead of asyncio.sleep (blocks the loop, like CPU-bound work)
    engine: str = "fake"
    calls: list[tuple[int, int]] = field(default_factory=list)
    active: int = 0
    peak: int = 0  # most writes in flight at once

    def _log(self, line: str) -> None:
        if self.log is not None:
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())

    async def write(self, request: WriteRequest) -> Draft:
        number = request.part.number
        self.calls.append((number, request.attempt))
        self._log(f"write {number} {request.attempt}")
        if self.transient.get(number, 0) > 0:
            self.transient[number] -= 1
            raise ConnectionError(f"fake connection reset for PART {number}")
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                if self.sync_sleep:
                    time.sleep(self.delay)
                else:
                    await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        if number in self.fail:
            raise RuntimeError(f"fake writer exploded on PART {number}")
        sections = list(request.part.sections)
        if number in self.always_bad or (number in self.bad and not request.feedback):
            sections = sections[1:]
        lines = [f"# {request.part.title}", ""]
        for s in sections:
            lines += [f"## Section {s.number}: {s.title}", "", f"Text about {s.title} [1].", "",
                      "```python", f"x = {s.number}", "```", ""]
        lines += ["## Sources", "", "1. Fake docs (`fake.module.function`)"]
        self._log(f"done {number}")
        return Draft(title=request.part.title, body="\n".join(lines) + "\n", sources=list(request.research.sources),
                     engine=self.engine, model=None, tokens_in=10, tokens_out=20)


@dataclass
class FakeEngine:
    researcher: FakeResearcher
    writer: FakeWriter
    engine: str = "fake"
    search: str = "fake"
    check: object = check_draft
    model: str | None = None


def make_engine(workspace=None, **options) -> FakeEngine:
    """The engine factory ``--engine runplan_fakes:make_engine`` calls (kb passes search= and progress=)."""
    env = os.environ
    writer = FakeWriter(
        delay=float(options.get("delay", env.get("KB_FAKE_DELAY", 0) or 0)),
        log=Path(options["log"]) if options.get("log") else (Path(env["KB_FAKE_LOG"]) if env.get("KB_FAKE_LOG") else None),
        fail=set(options.get("fail", _parts(env.get("KB_FAKE_FAIL")))),
        bad=set(options.get("bad", _parts(env.get("KB_FAKE_BAD")))),
        always_bad=set(options.get("always_bad", ())),
        transient=dict(options.get("transient", {})),
        sync_sleep=bool(options.get("sync_sleep", False)),
    )
    return FakeEngine(researcher=FakeResearcher(), writer=writer)


def plan_text(batches: list[int], *, targets: dict[int, str] | None = None, drops: dict[int, str] | None = None,
              title: str = "Test Topic") -> str:
    """A small plan: ``batches[i]`` PARTs in BATCH i+1, numbered from 1; ``targets``/``drops`` override
    PART targets and drop slugs."""
    targets = targets or {}
    drops = drops or {}
    total = sum(batches)
    lines = [f"# Knowledge Expansion: {title} ({total} runners in {len(batches)} batches)", "", "**Date**: 2025-11-14", ""]
    number = 0
    for b, count in enumerate(batches, start=1):
        lines += [f"# BATCH {b}: Batch {b} (PARTs {number + 1}-{number + count})", ""]
        for _ in range(count):
            number += 1
            target = targets.get(number, f"topic/{number:02d}-part-{number}.md")
            lines += [
                f"## PART {number}: Part {number} topic (~100 lines)", "",
                f"- [ ] PART {number}: Create {target}", "",
                "**Step 0: Check Existing Knowledge**",
                "- [ ] Read topic/not-there.md (missing on purpose)", "",
                "**Step 1: Web Research**",
                f'- [ ] Search: "part {number} query"', "",
                "**Step 2: Create Knowledge File**",
                f"- [ ] Section 1: Alpha {number} (first)",
                f"- [ ] Section 2: Beta {number} (second)", "",
                "**Step 3: Create KNOWLEDGE DROP**",
                f"- [ ] Create KNOWLEDGE-DROP-{drops.get(number, f'part-{number}')}-2025-11-14-[TIME].md", "",
                "---", "",
            ]
    return "\n".join(lines)
