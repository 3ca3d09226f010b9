"""The work of one runner task, stage by stage: plain functions, plain data in and out.

context -> research -> write -> check -> drop (knowledge file + KNOWLEDGE DROP) -> tick.
A stage that cannot go on raises :class:`PartFailure` with the reason the drop records;
the graph (kb.runner.graph) only decides what runs next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kb.engine.types import ContextDoc, Draft, Research, Researcher, WriteRequest, Writer
from kb.errors import PathError
from kb.fsutil import atomic_write_text
from kb.plan.model import Part
from kb.plan.parser import load_plan
from kb.records import (
    DropRecord,
    KnowledgeMeta,
    SourceRef,
    drop_filename,
    now_iso,
    read_knowledge,
    write_drop,
    write_knowledge,
)
from kb.runner.ticker import PlanTicker, TickFailed
from kb.snippets.extract import extract_snippets
from kb.workspace import Workspace

STAMP_FORMAT = "%Y-%m-%dT%H:%M"


class PartFailure(Exception):
    """This PART cannot be done; the message is the reason its drop records."""


# --- context -----------------------------------------------------------------------------------


def knowledge_target(workspace: Workspace, part: Part) -> tuple[Path, str]:
    """The knowledge file a PART writes (absolute, workspace-relative); refuses targets outside knowledge/."""
    if not part.target:
        raise PartFailure(f"PART {part.number} names no file to create (no '- [ ] PART {part.number}: Create <path>' line)")
    try:
        path = workspace.knowledge_path(part.target)
    except PathError as exc:
        raise PartFailure(f"refused: {exc}; a PART may only write inside the knowledge root "
                          f"({workspace.knowledge_prefix or 'the workspace itself'})") from None
    if path.suffix.lower() != ".md":
        raise PartFailure(f"refused: target {part.target!r} is not a Markdown (.md) file")
    return path, workspace.rel(path)


def protect_human_edits(path: Path, rel: str, *, force: bool) -> str | None:
    """Refuse to replace a file a person changed (or kb never wrote) unless ``force``; a warning when forced."""
    if not path.exists():
        return None
    doc = read_knowledge(path)
    if doc.has_front_matter and doc.meta.content_hash:
        if not doc.edited_by_hand:
            return None
        reason = f"{rel} was edited since kb wrote it (its body no longer matches the content_hash in its front matter)"
    else:
        reason = f"{rel} exists and was not written by kb (it has no content_hash in its front matter)"
    if force:
        return f"{reason}; replaced because of --force"
    raise PartFailure(f"{reason}; not overwritten: keep your edits, or rerun with --force to replace them")


def read_context(workspace: Workspace, part: Part) -> tuple[list[ContextDoc], list[str]]:
    """The PART's Step 0 reads from knowledge/; a missing file is a warning, not a failure."""
    docs: list[ContextDoc] = []
    warnings: list[str] = []
    for read in part.reads:
        try:
            path = workspace.knowledge_path(read.path)
        except PathError as exc:
            warnings.append(f"Step 0: not read: {exc}")
            continue
        if not path.is_file():
            warnings.append(f"Step 0: {workspace.knowledge_prefix}{read.path} does not exist; written without it")
            docs.append(ContextDoc(path=read.path, note=read.note, text=None))
            continue
        docs.append(ContextDoc(path=read.path, note=read.note, text=read_knowledge(path).body))
    return docs, warnings


def finished_meanwhile(plan_path: Path, number: int, was: dict) -> bool:
    """True when the plan shows the PART done by a run other than the one that selected it.

    A killed run can tick a PART just before it dies; its resumed self, or another
    run, must not write that PART again.
    """
    part = load_plan(plan_path).part(number)
    if part is None or part.status != "done":
        return False
    return was.get("status") != "done" or part.completed_at != was.get("completed_at")


def start_stamp(now: datetime | None = None) -> str:
    """When a task started (local time, minutes): names its drop, so a resumed task rewrites the same file."""
    return (now or datetime.now()).strftime(STAMP_FORMAT)


# --- research, write, check ----------------------------------------------------------------------


async def research(researcher: Researcher, part: Part, context: list[ContextDoc]) -> Research:
    return await researcher.research(part, context)


async def write(writer: Writer, request: WriteRequest) -> Draft:
    draft = await writer.write(request)
    if not isinstance(draft, Draft):
        raise PartFailure(f"the writer returned {type(draft).__name__}, not a Draft")
    return draft


def check(check_fn, draft: Draft, request: WriteRequest) -> list[str]:
    """The reasons the draft is not acceptable (empty: accept)."""
    return [str(r) for r in check_fn(draft, request)]


# --- drop and tick --------------------------------------------------------------------------------


def planned_sections(part: Part, body: str) -> list[str]:
    """The sections a knowledge file has: the plan's, or the body's ``##`` headings when the plan lists none."""
    if part.sections:
        return [s.title for s in part.sections]
    headings = [line[3:].strip() for line in body.splitlines() if line.startswith("## ")]
    return [h for h in headings if h.lower() not in ("sources", "overview")]


def snippet_count(rel: str, body: str) -> int:
    return len(extract_snippets(rel, body))


def save_knowledge(workspace: Workspace, part: Part, plan_rel: str, draft: Draft, *, force: bool,
                   durable: bool = True) -> KnowledgeMeta:
    """Write the knowledge file (front matter + body), after checking again that no person edited it meanwhile."""
    path, rel = knowledge_target(workspace, part)
    protect_human_edits(path, rel, force=force)
    meta = KnowledgeMeta(
        title=draft.title or part.title,
        plan=plan_rel,
        batch=part.batch,
        part=part.number,
        sections=planned_sections(part, draft.body),
        sources=list(draft.sources),
        engine=draft.engine,
        model=draft.model,
        created=now_iso(),
    )
    return write_knowledge(path, meta, draft.body, durable=durable)


@dataclass
class DropFacts:
    """Everything a drop says, in plain values (the graph state holds them between steps)."""

    plan: str
    part: Part
    slug: str
    stamp: str
    status: str  # "complete" | "failed"
    knowledge_file: str | None
    engine: str | None
    model: str | None
    sections: list[str] = field(default_factory=list)
    sections_empty: list[str] = field(default_factory=list)  # planned sections the file marks empty (issue 19)
    sections_pointing: list[str] = field(default_factory=list)  # ... and those it fills with a pointer only
    sections_curated: list[str] = field(default_factory=list)  # ... and those filled with a reviewer's choice (kb.curation)
    sources: list[SourceRef] = field(default_factory=list)
    snippets: int = 0
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None
    tokens: dict = field(default_factory=lambda: {"input": 0, "output": 0})
    cost_usd: float | None = None
    seconds: float | None = None
    research: dict = field(default_factory=dict)


def drop_path(workspace: Workspace, slug: str, stamp: str, plan: str | None = None) -> Path:
    """Where a PART's drop goes: the layout's drops folder, or beside its plan where the layout keeps them there."""
    folder = workspace.drop_folder(workspace.root / plan) if plan else workspace.drops_dir
    return folder / drop_filename(slug, datetime.strptime(stamp, STAMP_FORMAT))


def write_drop_record(workspace: Workspace, facts: DropFacts, durable: bool = True) -> Path:
    """Write ``drops/KNOWLEDGE-DROP-<slug>-<date>-<HHMM>.md`` (same name on a resume: rewritten, not doubled)."""
    path = drop_path(workspace, facts.slug, facts.stamp, facts.plan)
    record = DropRecord(
        plan=facts.plan,
        batch=facts.part.batch,
        part=facts.part.number,
        title=facts.part.title,
        # "complete" only when every planned section is filled; one marked empty makes the drop partial.
        status="partial" if facts.status == "complete" and facts.sections_empty else facts.status,
        knowledge_file=facts.knowledge_file,
        created=now_iso(),
        sections_written=list(facts.sections),
        sections_empty=list(facts.sections_empty),
        sections_pointing=list(facts.sections_pointing),
        sections_curated=list(facts.sections_curated),
        sources_used=list(facts.sources),
        snippets_written=facts.snippets,
        warnings=list(facts.warnings),
        reason=facts.reason,
        engine=facts.engine,
        model=facts.model,
        tokens={"input": int(facts.tokens.get("input", 0)), "output": int(facts.tokens.get("output", 0))},
        cost_usd=facts.cost_usd,
        seconds=round(facts.seconds, 2) if facts.seconds is not None else None,
        research=dict(facts.research),
    )
    write_drop(path, record, durable=durable)
    return path


async def tick(ticker: PlanTicker, plan_path: Path, part: Part, written: list[str] = ()) -> None:
    """Tick the PART in the plan: ``- [✓] PART n: ... (Completed YYYY-MM-DD HH:MM)``; nothing else changes.

    ``written``: the PART's files, not yet flushed to disk; they are, before the tick is written.
    """
    try:
        await ticker.tick(plan_path, part.number, part.status_line, written=written)
    except TickFailed as exc:
        raise PartFailure(f"the file and drop were written, but the plan could not be ticked: {exc}") from None


# --- review ---------------------------------------------------------------------------------------


def record_review(workspace: Workspace, plan_rel: str, label: str, answer: dict) -> dict:
    """Remember a person's verdict on a batch in ``.kb/reviews.json`` (local state, like the checkpoints)."""
    path = workspace.state_dir / "reviews.json"
    try:
        reviews = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        reviews = {}
    entry = {"approved": bool(answer.get("approved")), "note": answer.get("note") or "", "at": now_iso()}
    reviews.setdefault(plan_rel, {})[label] = entry
    atomic_write_text(path, json.dumps(reviews, indent=2, ensure_ascii=False) + "\n")
    return entry
