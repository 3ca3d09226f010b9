"""Drive one graph run (a batch or a PART): the SQLite checkpointer, resume, the review interrupt.

A unit's checkpoint thread (kb.runner.select.Unit.thread_id) outlives a killed
process: the next run of the same unit finds it unfinished and resumes it, so
finished PARTs are not redone. A finished run's thread is deleted, so the next
run of the unit starts afresh.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command, RetryPolicy

from kb.plan.model import Plan
from kb.plan.parser import parse_plan
from kb.runner.graph import build_batch_graph, recursion_limit
from kb.runner.lane import FinishLane
from kb.runner.nodes import RETRY
from kb.runner.select import Unit
from kb.runner.state import RunContext
from kb.workspace import Workspace

CHECKPOINTS = "checkpoints.sqlite"
# A finished task's output is saved as soon as it lands whatever the mode; "async" only
# overlaps the batch graph's three step checkpoints with the next step. ("sync" also makes
# LangGraph 1.2 wait on a checkpoint of the runner subgraph, which has no checkpointer.)
DURABILITY = "async"

Event = Callable[[dict], None]
Ask = Callable[[dict], dict]


@dataclass
class RunOptions:
    runners: int = 4
    redo: bool = False
    review: bool = False
    resume: bool = False  # only says the user asked; an unfinished run is resumed either way (unless --redo)


@dataclass
class RunOutcome:
    unit: Unit
    resumed: bool
    results: list[dict]
    summary: dict
    reviewed: dict | None
    seconds: float
    thread_id: str
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.summary["rows"] if r["status"] == "failed"]

    def to_dict(self) -> dict:
        return {
            "label": self.unit.label,
            "batch": self.unit.batch,
            "part": self.unit.part,
            "thread_id": self.thread_id,
            "resumed": self.resumed,
            "seconds": round(self.seconds, 2),
            "summary": self.summary,
            "reviewed": self.reviewed,
            "notes": self.notes,
        }


class EagerWritesSaver(AsyncSqliteSaver):
    """An AsyncSqliteSaver that starts saving a finished task's output the moment LangGraph hands it over.

    LangGraph runs checkpoint writes through the same ``max_concurrency`` gate as the tasks
    themselves, behind every task still waiting for a slot: with more PARTs than runners, a
    finished PART's output would be saved only once the batch's last PART had started (a kill
    before that loses it), and the whole batch's saves would land together at the end, while
    the last PARTs finish. LangGraph still awaits the returned task behind its gate; by then
    the rows are written.
    """

    def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> Any:  # type: ignore[override]
        save = super().aput_writes(config, writes, task_id, task_path)
        try:
            return asyncio.get_running_loop().create_task(save)
        except RuntimeError:  # no running loop here: LangGraph awaits it later, as it would the plain saver's
            return save


@asynccontextmanager
async def open_checkpointer(workspace: Workspace) -> AsyncIterator[AsyncSqliteSaver]:
    """The workspace's LangGraph checkpointer: ``.kb/checkpoints.sqlite``."""
    workspace.state_dir.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(workspace.state_dir / CHECKPOINTS) as conn:
        # The saver turns on WAL; with WAL, synchronous=NORMAL still survives a killed process
        # (only a power cut can lose the last commits) and commits stop waiting for fsync.
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield EagerWritesSaver(conn)


async def unfinished(workspace: Workspace, unit: Unit) -> bool:
    """Whether the unit has a checkpointed run that did not finish (killed, or paused at the review gate)."""
    path = workspace.state_dir / CHECKPOINTS
    if not path.exists():
        return False
    async with open_checkpointer(workspace) as saver:
        graph = build_batch_graph(saver)
        snapshot = await graph.aget_state({"configurable": {"thread_id": unit.thread_id}})
        return bool(snapshot.next)


async def run_unit(
    workspace: Workspace,
    unit: Unit,
    context: RunContext,
    options: RunOptions,
    *,
    on_event: Event | None = None,
    ask: Ask | None = None,
    retry: RetryPolicy | None = None,
) -> RunOutcome:
    """Run (or resume) one unit to the end; ``ask`` answers the review interrupt (--review)."""
    started = time.perf_counter()
    notes: list[str] = []
    async with open_checkpointer(workspace) as saver:
        # Parsing the plan (select needs it; a resume does not use it) overlaps setting up and
        # reading the checkpoints. Not earlier: the parse holds the GIL, and the connection's
        # thread, started after it, waited for the whole parse (bench: first write 7 ms later).
        ahead = asyncio.create_task(asyncio.to_thread(read_plan_ahead, workspace.root / unit.plan, unit.plan))
        graph = build_batch_graph(saver, retry=retry or RETRY)
        config: dict[str, Any] = {
            "configurable": {"thread_id": unit.thread_id},
            # Top level: under "configurable" LangGraph ignores it.
            "max_concurrency": options.runners,
            "recursion_limit": recursion_limit(context.max_rewrites),
        }
        snapshot = await graph.aget_state(config)
        resumed = bool(snapshot.next) and not (options.redo and not options.resume)
        context = dataclasses.replace(context, resuming=resumed, lane=FinishLane(), plan_ahead=ahead, report=on_event)
        payload: Any
        if resumed:
            payload = None
            if snapshot.interrupts:
                payload = Command(resume=_ask(ask, snapshot.interrupts[0].value))
        else:
            if snapshot.values:
                if snapshot.next:
                    notes.append(f"discarded the unfinished run of {unit.label} (--redo starts afresh)")
                await saver.adelete_thread(unit.thread_id)
            payload = {"plan": unit.plan, "label": unit.label, "batch": unit.batch, "part": unit.part,
                       "redo": options.redo, "review": options.review}
        while True:
            # "v2": the final state and the interrupts come apart (and from the values stream alone).
            out = await graph.ainvoke(payload, config, context=context, durability=DURABILITY, version="v2")
            if out.interrupts:  # the review gate asks for a verdict
                payload = Command(resume=_ask(ask, out.interrupts[0].value))
                continue
            break
        values = out.value
        # Back without an interrupt, the run is finished (a failure raises): its checkpoints go.
        await saver.adelete_thread(unit.thread_id)
    summary = values.get("summary") or {"label": unit.label, "rows": [], "counts": {"done": 0, "failed": 0, "skipped": 0},
                                        "seconds": 0.0, "tokens": {"input": 0, "output": 0}}
    return RunOutcome(
        unit=unit,
        resumed=resumed,
        results=list(values.get("results") or []),
        summary=summary,
        reviewed=values.get("reviewed"),
        seconds=time.perf_counter() - started,
        thread_id=unit.thread_id,
        notes=notes,
    )


def read_plan_ahead(path: Path, display: str) -> tuple[bytes, Plan] | None:
    """The plan's bytes and their parse, or None where either fails (the select step then
    reads the plan again and reports the failure as it would have)."""
    try:
        raw = path.read_bytes()
        return raw, parse_plan(raw, display)
    except Exception:
        return None


def _ask(ask: Ask | None, payload: dict) -> dict:
    if ask is None:
        # Nobody to ask (an API caller without a reviewer): the batch stays unreviewed.
        return {"approved": False, "note": "no reviewer to ask"}
    return ask(payload)
