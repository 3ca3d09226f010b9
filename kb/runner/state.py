"""What the batch graph carries: checkpointed state (plain, JSON-like data) and the run context (live objects).

State is saved by the SQLite checkpointer after every step, so it holds only
plain dicts, lists, strings and numbers. The engine, the workspace and the
progress hooks are not state: they travel in the LangGraph runtime context.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from kb.engine.types import Draft, Researcher, WriteRequest, Writer
from kb.plan.model import Plan
from kb.runner.lane import FinishLane
from kb.runner.ticker import PlanTicker
from kb.workspace import Workspace

CheckFn = Callable[[Draft, WriteRequest], list[str]]


class BatchInput(TypedDict, total=False):
    """What a run starts from: which plan and which PARTs (``select`` turns it into snapshots)."""

    plan: str  # workspace-relative plan path
    label: str  # "BATCH 2", "PART 5": for messages
    batch: int | None  # run this batch's PARTs ...
    part: int | None  # ... or this one PART
    redo: bool  # include PARTs already done
    review: bool  # pause at the review gate for a person's approval


class BatchState(BatchInput, total=False):
    plan_title: str | None
    topic: str | None
    selected: list[dict]  # one {"part": Part as dict, "was": {...}} per PART to run
    results: Annotated[list[dict], operator.add]  # one per finished runner task (complete or failed)
    summary: dict
    reviewed: dict | None  # {"approved": bool, "note": str, "at": iso} once the gate was passed


class PartTask(TypedDict, total=False):
    """What a runner task starts from (its ``Send``); no stage changes it."""

    plan_path: str
    plan_title: str | None
    plan_topic: str | None
    part: dict  # the PART as parsed when the run started
    was: dict  # {"status", "completed_at"} of the PART when the run started (resume guard)
    drop_slug: str  # the drop's name: KNOWLEDGE-DROP-<slug>-<date>-<HHMM>.md
    stamp: str  # local time the run selected the PART (minutes): names its drop, stable across resumes


class PartWork(TypedDict, total=False):
    """What the stages find and make; each stage hands on the whole of it, updated."""

    stamp: str  # the task's stamp, or the time its first stage ran where the task came without one
    stage: str
    knowledge_file: str | None  # workspace-relative
    written: list[str]  # workspace-relative files the drop stage wrote, flushed to disk by the tick
    context: list[dict]
    research: dict
    draft: dict
    feedback: list[str]
    attempt: int  # writes done so far
    tokens: dict
    cost_usd: float | None
    seconds: float
    warnings: list[str]
    error: str | None
    skipped: str | None  # why the task did nothing (an earlier, killed run already finished it)
    drop_file: str | None
    snippets: int  # code fences in the written file
    sections_written: list[str]


class PartView(PartTask, PartWork, total=False):
    """What a stage reads: the task and its work so far, as one flat dict."""


class PartState(TypedDict, total=False):
    """One runner task, in three channels. Each LangGraph step costs more the more channels the
    state has (every step reads, writes and copies each one), so the task's many fields travel
    in two plain dicts rather than a channel each. Keys differ from BatchState's except
    ``results``, the task's only output."""

    task: PartTask
    work: PartWork
    results: Annotated[list[dict], operator.add]


class PartOutput(TypedDict):
    results: Annotated[list[dict], operator.add]


@dataclass
class RunContext:
    """Live objects every node may use; not checkpointed (rebuilt by each process that runs or resumes)."""

    workspace: Workspace
    researcher: Researcher
    writer: Writer
    check: CheckFn
    max_rewrites: int = 2
    force: bool = False  # overwrite knowledge files a person edited
    resuming: bool = False  # set by run_unit: a resumed run checks whether a killed run already finished a PART
    model: str | None = None  # the writer's model, for failed drops that never got a Draft
    ticker: PlanTicker = field(default_factory=PlanTicker)
    lane: FinishLane = field(default_factory=FinishLane)  # run_unit gives each run its own
    # run_unit starts reading the plan while it opens the checkpoints: an awaitable of
    # (bytes, Plan), or of None when that read failed (select then reads the plan itself).
    plan_ahead: Awaitable[tuple[bytes, Plan] | None] | None = None
    # Told each runner stage as it starts and each task's result row as it ends (the progress
    # view). A direct call, not LangGraph's custom stream: streaming the subgraphs to reach those
    # events cost the run more than all of kb's stage bookkeeping (bench/bench_orchestration.py).
    report: Callable[[dict], None] | None = None


def engine_model(engine: Any) -> str | None:
    """The model an engine bundle reports (None offline or when it has none)."""
    try:
        return getattr(engine, "model", None)
    except Exception:  # a property that cannot answer must not stop a run
        return None
