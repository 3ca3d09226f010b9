"""The data that moves between the runner stages (context -> research -> write -> check).

Every engine (offline, openai, anthropic) and every search provider (local,
searxng, tavily, brave) speaks these types, so the LangGraph runner wires
stages without knowing which engine is behind them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from kb.plan.model import Part
from kb.records import SourceRef


# Research's warning for a section it found nothing for: "section 4 (Learning rate warmup): nothing in the local corpus
# (no passage was relevant enough)", or "...: no web passage matched".
FOUND_NOTHING = re.compile(r"^section (\d+) \(.*?\): (?:nothing in the local corpus \((.*)\)|no web passage matched)$")


def found_nothing(number: int, title: str, why: str) -> str:
    """Local research's warning for a section it found nothing for, saying why."""
    return f"section {number} ({title}): nothing in the local corpus ({why})"


def withdraw_found_nothing(warnings: list[str], filled: set[int]) -> list[str]:
    """``warnings`` less research's "found nothing" for the sections a file filled after all (by a link to the file
    that quotes their answer, or with passages the model judged on topic)."""
    return [w for w in warnings if not ((m := FOUND_NOTHING.match(w)) and int(m.group(1)) in filled)]


@dataclass
class ContextDoc:
    """A Step 0 read: an existing knowledge file (``text`` is None when it does not exist)."""

    path: str
    note: str
    text: str | None


@dataclass
class Passage:
    """A ranked piece of research: text from one source, with any runnable examples it carries."""

    kind: str  # "doc" | "knowledge" | "folder" | "web"
    locator: str  # module path, workspace-relative path, or URL
    title: str
    text: str
    score: float = 0.0
    examples: list[str] = field(default_factory=list)  # code, e.g. doctest examples as plain Python
    query: str | None = None  # the query that found it
    curated_by: str | None = None  # who accepted it for the section in curation.toml, where research did not
    curated_why: str | None = None  # ... and why, in their words


@dataclass
class Research:
    """What research found for a PART: passages per planned section and every source they come from."""

    by_section: dict[int, list[Passage]]
    sources: list[SourceRef]  # numbered 1..n; the only things a knowledge file may cite
    warnings: list[str] = field(default_factory=list)
    # What web research did, for the drop: "searched" (queries), "read" (pages), "refused" (URLs not fetched).
    log: dict = field(default_factory=dict)
    # For a section research left empty: its best passages below the bar, best first. The LLM engines ask the model
    # whether any is about the section (kb.llm.relevance_judge); the offline writer never quotes them.
    candidates: dict[int, list[Passage]] = field(default_factory=dict)

    def source_id(self, locator: str) -> int | None:
        return next((s.id for s in self.sources if s.locator == locator), None)


@dataclass
class WriteRequest:
    plan_title: str | None
    topic: str | None
    plan_path: str
    part: Part
    context: list[ContextDoc]
    research: Research
    feedback: list[str] = field(default_factory=list)  # reasons the previous attempt failed the check
    attempt: int = 0


@dataclass
class Draft:
    """A written knowledge file body (no front matter) and how it was made."""

    title: str
    body: str
    sources: list[SourceRef]
    engine: str
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    warnings: list[str] = field(default_factory=list)
    sections_empty: list[str] = field(default_factory=list)  # planned sections research found nothing for
    # The writer's record for the drop: "evidence" (the passages [n] names), "support" (checked sentences), "usage".
    evidence: dict = field(default_factory=dict)


class Writer(Protocol):
    """A writer engine."""

    engine: str

    async def write(self, request: WriteRequest) -> Draft: ...


class Researcher(Protocol):
    """A research provider: the PART's queries and sections in, ranked passages and numbered sources out."""

    name: str

    async def research(self, part: Part, context: list[ContextDoc]) -> Research: ...
