"""Graph nodes: read the plain state, call a stage (kb.runner.stages), return the state update
(a runner node returns it as a ``Command`` that also names the next stage: ``next_stage``).

Each runner node reports its stage to the run's ``report`` hook (the progress view
reads it), adds its wall time to the task's seconds, and turns an exception into
the PART's failure reason, except a transient one on a node with a RetryPolicy,
which it re-raises until the last attempt so LangGraph retries it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
from langgraph.runtime import Runtime
from langgraph.graph import END
from langgraph.types import Command, RetryPolicy, interrupt

from kb.engine.check import curated_sections, empty_sections, pointing_sections
from kb.engine.types import WriteRequest, withdraw_found_nothing
from kb.errors import KbError, WorkspaceError
from kb.plan.model import Plan
from kb.plan.parser import load_plan
from kb.runner import stages
from kb.runner.serial import (
    context_from_dicts,
    context_to_dicts,
    draft_from_dict,
    draft_to_dict,
    part_from_dict,
    part_to_dict,
    research_from_dict,
    research_to_dict,
)
from kb.runner.lane import LANE_STAGES
from kb.runner.select import Unit, select_parts
from kb.runner.state import BatchState, PartState, PartView, RunContext
from kb.runner.summary import summarize


def is_transient(exc: BaseException) -> bool:
    """Faults that may pass on a retry: connection trouble, timeouts, providers that said "try again"."""
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError, httpx.TransportError)):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in (408, 425, 429) or exc.response.status_code >= 500
    return bool(getattr(exc, "retryable", False))  # kb.net.retry.ProviderError


# Research and write talk to search providers and models: retried twice, 1 s then 2 s apart (with jitter).
RETRY = RetryPolicy(initial_interval=1.0, backoff_factor=2.0, max_interval=30.0, max_attempts=3, retry_on=is_transient)

StageFn = Callable[[PartView, RunContext], Awaitable[dict]]
OLDER_RUN = "the unfinished run in .kb/checkpoints.sqlite was saved by an older kb and cannot be resumed"


def describe(exc: BaseException) -> str:
    """A failure reason for a drop: kb's own errors as they are, anything else with its type."""
    if isinstance(exc, (KbError, stages.PartFailure)) or getattr(exc, "retryable", None) is not None:
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def runner_node(stage: str, fn: StageFn, *, retry: RetryPolicy | None = None):
    """Wrap a stage adapter as a runner-subgraph node (``retry``: the RetryPolicy the node is added with)."""

    async def node(state: PartState, runtime: Runtime[RunContext]) -> Command:
        attempt = runtime.execution_info.node_attempt
        if "task" not in state:  # checkpointed by a kb whose task state was flat: nothing to resume from
            raise WorkspaceError(f"{OLDER_RUN}; rerun with --redo to start the batch afresh")
        work = state.get("work") or {}
        view: PartView = {**state["task"], **work}  # type: ignore[typeddict-item]
        number = view["part"]["number"]
        lane = runtime.context.lane if stage in LANE_STAGES else None
        if lane is not None:
            await lane.enter(number)
        try:
            update = await _run_stage(view, runtime, attempt)
        except BaseException:
            if lane is not None:
                lane.leave(number)
            raise
        results = update.pop("results", None)
        work = {**work, **update}
        goto = next_stage(stage, {**view, **update})
        if lane is not None and goto not in LANE_STAGES:  # the task ends, goes back to write, or leaves the lane
            lane.leave(number)
        return Command(update={"work": work} if results is None else {"work": work, "results": results}, goto=goto)

    async def _run_stage(state: PartView, runtime: Runtime[RunContext], attempt: int) -> dict:
        report = runtime.context.report
        if report is not None:
            report({"part": state["part"]["number"], "stage": stage, "attempt": attempt,
                    "write": state.get("attempt", 0) + (1 if stage == "write" else 0)})
        started = time.perf_counter()
        try:
            update = await fn(state, runtime.context)
        except stages.PartFailure as exc:
            update = {"error": str(exc)}
        except Exception as exc:  # a PART's failure must never stop the other PARTs
            if retry is not None and is_transient(exc) and attempt < retry.max_attempts:
                raise
            tries = f" (after {attempt} attempts)" if attempt > 1 else ""
            update = {"error": f"{stage} failed{tries}: {describe(exc)}"}
        update["seconds"] = state.get("seconds", 0.0) + (time.perf_counter() - started)
        update["stage"] = stage
        merged = {**state, **update}
        if is_final(stage, merged):  # the task ends here: its one output, a row for the batch summary
            row = result_row(merged, runtime.context)
            update["results"] = [row]
            if report is not None:
                report({"part": row["part"], "stage": row["status"], "result": row})
        return update

    node.__name__ = stage
    return node


# Where each stage may go next (the graph declares these; next_stage picks one).
DESTINATIONS = {
    "context": ("research", "drop", END),
    "research": ("write", "drop"),
    "write": ("check", "drop"),
    "check": ("write", "drop"),
    "drop": ("tick", END),
    "tick": (END,),
}
_ON_SUCCESS = {"context": "research", "research": "write", "write": "check", "check": "drop", "drop": "tick"}


def next_stage(stage: str, state: PartView) -> str:
    """The stage after ``stage``, given the task's state after it: any failure goes to drop,
    a failed check back to write (with its reasons), and the stage that ends the task to END."""
    if is_final(stage, state):
        return END
    if stage == "check" and rewrites(state):
        return "write"
    if state.get("error"):
        return "drop"
    return _ON_SUCCESS[stage]


def rewrites(state: PartView | dict) -> bool:
    """Whether the check sends the task back to write (its reasons as feedback) rather than on to drop."""
    return bool(state.get("feedback")) and not state.get("error")


def is_final(stage: str, state: PartView) -> bool:
    """Whether the task ends after ``stage``."""
    if stage == "context" and state.get("skipped"):
        return True
    return stage == "tick" or (stage == "drop" and bool(state.get("error")))


def _part(state: PartView):
    return part_from_dict(state["part"])


def _plan_path(state: PartView, ctx: RunContext):
    return ctx.workspace.root / state["plan_path"]


def _request(state: PartView) -> WriteRequest:
    return WriteRequest(
        plan_title=state.get("plan_title"),
        topic=state.get("plan_topic"),
        plan_path=state["plan_path"],
        part=_part(state),
        context=context_from_dicts(state.get("context") or []),
        research=research_from_dict(state["research"]),
        feedback=list(state.get("feedback") or []),
        attempt=state.get("attempt", 0),
    )


# --- stage adapters ------------------------------------------------------------------------------


async def context_stage(state: PartView, ctx: RunContext) -> dict:
    part = _part(state)
    update: dict = {"stamp": state.get("stamp") or stages.start_stamp(), "warnings": []}
    # Only a resumed run can meet a PART that was finished after it was selected (the lock keeps other
    # processes out), so only it pays for reading the plan again.
    if ctx.resuming and stages.finished_meanwhile(_plan_path(state, ctx), part.number, state.get("was") or {}):
        return {**update, "skipped": "already done: an earlier (killed) run of this plan finished it"}
    path, rel = stages.knowledge_target(ctx.workspace, part)
    update["knowledge_file"] = rel
    try:
        forced = stages.protect_human_edits(path, rel, force=ctx.force)
    except stages.PartFailure as exc:
        return {**update, "error": str(exc)}
    docs, warnings = stages.read_context(ctx.workspace, part)
    update["warnings"] = ([forced] if forced else []) + warnings
    update["context"] = context_to_dicts(docs)
    return update


async def research_stage(state: PartView, ctx: RunContext) -> dict:
    found = await stages.research(ctx.researcher, _part(state), context_from_dicts(state.get("context") or []))
    return {"research": research_to_dict(found), "warnings": list(state.get("warnings") or []) + list(found.warnings)}


async def write_stage(state: PartView, ctx: RunContext) -> dict:
    draft = await stages.write(ctx.writer, _request(state))
    tokens = dict(state.get("tokens") or {"input": 0, "output": 0})
    tokens["input"] = tokens.get("input", 0) + draft.tokens_in
    tokens["output"] = tokens.get("output", 0) + draft.tokens_out
    cost = state.get("cost_usd")
    if draft.cost_usd is not None:
        cost = (cost or 0.0) + draft.cost_usd
    return {"draft": draft_to_dict(draft), "attempt": state.get("attempt", 0) + 1, "tokens": tokens, "cost_usd": cost}


async def check_stage(state: PartView, ctx: RunContext) -> dict:
    reasons = stages.check(ctx.check, draft_from_dict(state["draft"]), _request(state))
    if not reasons:
        return {"feedback": []}
    writes = state.get("attempt", 1)
    if writes > ctx.max_rewrites:
        return {"feedback": reasons, "error": f"the draft still failed the check after {writes} "
                f"write{'s' if writes > 1 else ''}: " + "; ".join(reasons)}
    return {"feedback": reasons}


def _facts(state: PartView, ctx: RunContext, status: str, reason: str | None = None):
    part = _part(state)
    draft = draft_from_dict(state["draft"]) if state.get("draft") else None
    rel = state.get("knowledge_file")
    warnings = list(dict.fromkeys([*(state.get("warnings") or []), *(draft.warnings if draft else [])]))
    empty = empty_sections(draft.body, part) if draft and status == "complete" else []
    if draft and status == "complete":
        # Research said it found nothing for a section the file filled after all (a link, the model's second opinion).
        warnings = withdraw_found_nothing(warnings, {s.number for s in part.sections if s.title not in empty})
    return stages.DropFacts(
        plan=state["plan_path"],
        part=part,
        slug=state.get("drop_slug") or part.drop_slug,
        stamp=state.get("stamp") or stages.start_stamp(),
        status=status,
        knowledge_file=rel,
        engine=draft.engine if draft else getattr(ctx.writer, "engine", None),
        model=draft.model if draft else ctx.model,
        sections=stages.planned_sections(part, draft.body) if draft and status == "complete" else [],
        sections_empty=empty,
        sections_pointing=pointing_sections(draft.body, part, {src.id: src.kind for src in draft.sources})
        if draft and status == "complete" else [],
        sections_curated=curated_sections(draft.body, part) if draft and status == "complete" else [],
        sources=list(draft.sources) if draft and status == "complete" else [],
        snippets=stages.snippet_count(rel or "", draft.body) if draft and status == "complete" else 0,
        warnings=warnings,
        reason=reason,
        tokens=dict(state.get("tokens") or {"input": 0, "output": 0}),
        cost_usd=state.get("cost_usd"),
        seconds=state.get("seconds", 0.0),
        research=_research_record((state.get("research") or {}).get("log") or {}, draft.evidence if draft else {}),
    )


def _research_record(log: dict, evidence: dict) -> dict:
    """What research did (its log) and what the writer stood on (evidence, support); usage per stage from both."""
    usage = {**(log.get("usage") or {}), **(evidence.get("usage") or {})}
    return {**log, **evidence, **({"usage": usage} if usage else {})}


async def drop_stage(state: PartView, ctx: RunContext) -> dict:
    # In a thread: two files written; the event loop serves the other runners meanwhile.
    return await asyncio.to_thread(_drop, state, ctx)


def _drop(state: PartView, ctx: RunContext) -> dict:
    # A complete PART's two files are flushed to disk by its tick, together with those of the
    # PARTs ticked at the same time and before the plan says done (one flush, not four fsyncs
    # each). A failed PART gets no tick: its drop is made durable here.
    error = state.get("error")
    written: list[str] = []
    if error is None:
        try:
            stages.save_knowledge(ctx.workspace, _part(state), state["plan_path"], draft_from_dict(state["draft"]),
                                  force=ctx.force, durable=False)
            written.append(state["knowledge_file"])
        except stages.PartFailure as exc:
            error = str(exc)
    facts = _facts(state, ctx, "failed" if error else "complete", error)
    path = stages.write_drop_record(ctx.workspace, facts, durable=bool(error))
    if not error:
        written.append(ctx.workspace.rel(path))
    return {"drop_file": ctx.workspace.rel(path), "error": error, "snippets": facts.snippets,
            "sections_written": facts.sections, "sections_empty": facts.sections_empty, "written": written}


async def tick_stage(state: PartView, ctx: RunContext) -> dict:
    try:
        written = [str(ctx.workspace.root / rel) for rel in state.get("written") or []]
        await stages.tick(ctx.ticker, _plan_path(state, ctx), _part(state), written=written)
    except stages.PartFailure as exc:
        stages.write_drop_record(ctx.workspace, _facts(state, ctx, "failed", str(exc)))
        return {"error": str(exc)}
    return {}


def result_row(state: PartView, ctx: RunContext) -> dict:
    """What the batch summary and the progress view show for a finished task."""
    part = state["part"]
    draft = state.get("draft") or {}
    status = "skipped" if state.get("skipped") else ("failed" if state.get("error") else "done")
    return {
        "part": part["number"],
        "title": part.get("title"),
        "target": part.get("target"),
        "file": state.get("knowledge_file"),
        "status": status,
        "reason": state.get("error") or state.get("skipped"),
        "sections": len(state.get("sections_written") or []) if status == "done" else 0,
        # Planned sections the file marks empty (research found nothing): the summary shows filled of planned.
        "sections_empty": len(state.get("sections_empty") or []) if status == "done" else 0,
        "sources": len(draft.get("sources") or []) if status == "done" else 0,
        "snippets": state.get("snippets", 0) if status == "done" else 0,
        "seconds": round(state.get("seconds", 0.0), 2),
        "writes": state.get("attempt", 0),
        "tokens": state.get("tokens") or {"input": 0, "output": 0},
        "cost_usd": state.get("cost_usd"),
        # Tokens (and dollars) per stage: research's questions, the sections, the overview (LLM engines).
        "usage": _research_record(((state.get("research") or {}).get("log") or {}),
                                  draft.get("evidence") or {}).get("usage") or {},
        "engine": draft.get("engine") or getattr(ctx.writer, "engine", None),
        "model": draft.get("model"),
        "drop": state.get("drop_file"),
        "warnings": list(state.get("warnings") or []) + list(draft.get("warnings") or []),
    }


# --- batch nodes ----------------------------------------------------------------------------------


async def select_node(state: BatchState, runtime: Runtime[RunContext]) -> dict:
    """Snapshot the PARTs this run takes (a resume keeps this snapshot, whatever the plan says later)."""
    ws = runtime.context.workspace
    plan = await _plan_now(ws.root / state["plan"], state["plan"], runtime.context.plan_ahead)
    unit = Unit(plan=state["plan"], label=state.get("label") or "", batch=state.get("batch"), part=state.get("part"))
    selection = select_parts(plan, unit, redo=bool(state.get("redo")))
    slugs = Counter(p.drop_slug for p in plan.parts)
    # Taken here, where it is checkpointed: a task cut off by a kill starts again from its
    # first stage, and with the same stamp its drop is rewritten rather than doubled.
    stamp = stages.start_stamp()
    return {
        "plan_title": plan.title,
        "topic": plan.topic,
        "selected": [
            {
                "part": part_to_dict(p),
                "was": {"status": p.status, "completed_at": p.completed_at},
                # Two PARTs naming the same drop would overwrite each other's drop: tell them apart.
                "drop_slug": p.drop_slug if slugs[p.drop_slug] == 1 else f"{p.drop_slug}-part-{p.number}",
                "stamp": stamp,
            }
            for p in selection.parts
        ],
    }


async def _plan_now(path, rel: str, ahead) -> Plan:
    """The plan as the file holds it now: the one read ahead if the file has not changed since."""
    early = await ahead if ahead is not None else None
    if early is not None:
        raw, plan = early
        try:
            if path.read_bytes() == raw:
                return plan
        except OSError:
            pass
    return await asyncio.to_thread(load_plan, path, rel)


async def review_node(state: BatchState, runtime: Runtime[RunContext]) -> dict:
    """The review gate: the batch summary, and with --review a pause for a person's verdict."""
    summary = summarize(state.get("results") or [], label=state.get("label") or "")
    if not state.get("review"):
        return {"summary": summary, "reviewed": None}
    answer = interrupt({"label": state.get("label"), "plan": state["plan"], "summary": summary})
    if not isinstance(answer, dict):
        answer = {"approved": bool(answer)}
    entry = await asyncio.to_thread(stages.record_review, runtime.context.workspace, state["plan"],
                                    state.get("label") or "", answer)
    return {"summary": summary, "reviewed": entry}
