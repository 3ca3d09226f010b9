"""Which PARTs a run takes: one batch, one PART, or every batch in order (plain functions over a Plan)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kb.errors import PlanError
from kb.plan.model import Part, Plan


@dataclass
class Unit:
    """One graph run: a batch or a single PART of one plan, with its own checkpoint thread."""

    plan: str  # workspace-relative plan path
    label: str  # "BATCH 2" or "PART 5"
    batch: int | None
    part: int | None = None

    @property
    def thread_id(self) -> str:
        """One LangGraph thread per plan + batch (or plan + PART for --part)."""
        scope = f"part-{self.part}" if self.part is not None else f"batch-{self.batch}"
        return f"run-plan:{self.plan}:{scope}"


@dataclass
class Selection:
    unit: Unit
    parts: list[Part]  # what will run
    done: list[Part] = field(default_factory=list)  # done already, left alone (no --redo)


def units_for(plan: Plan, *, batch: int | None = None, part: int | None = None, all_batches: bool = False) -> list[Unit]:
    """The runs a command line asks for; with no choice, the first batch that has a pending PART."""
    if sum(x is not None and x is not False for x in (batch, part, all_batches)) > 1:
        raise PlanError("choose one of --batch, --part and --all")
    if part is not None:
        found = plan.part(part)
        if found is None:
            raise PlanError(f"{plan.path}: there is no PART {part} (PARTs: {', '.join(str(p.number) for p in plan.parts)})")
        return [Unit(plan=plan.path, label=f"PART {part}", batch=found.batch, part=part)]
    if batch is not None:
        if plan.batch(batch) is None:
            raise PlanError(f"{plan.path}: there is no BATCH {batch} (batches: {', '.join(str(b.number) for b in plan.batches)})")
        return [Unit(plan=plan.path, label=f"BATCH {batch}", batch=batch)]
    if not plan.batches:
        raise PlanError(f"{plan.path}: the plan has no batches")
    if all_batches:
        return [Unit(plan=plan.path, label=f"BATCH {b.number}", batch=b.number) for b in plan.batches]
    for b in plan.batches:
        if any(p.status != "done" for p in b.parts):
            return [Unit(plan=plan.path, label=f"BATCH {b.number}", batch=b.number)]
    return [Unit(plan=plan.path, label=f"BATCH {plan.batches[-1].number}", batch=plan.batches[-1].number)]


def select_parts(plan: Plan, unit: Unit, *, redo: bool = False) -> Selection:
    """The PARTs of a unit that run: the pending ones, or all of them with ``redo``."""
    if unit.part is not None:
        chosen = [p for p in plan.parts if p.number == unit.part]
    else:
        batch = plan.batch(unit.batch) if unit.batch is not None else None
        chosen = list(batch.parts) if batch else []
    run = [p for p in chosen if redo or p.status != "done"]
    return Selection(unit=unit, parts=run, done=[p for p in chosen if p not in run])


def unfinished_earlier(plan: Plan, unit: Unit) -> list[str]:
    """Warnings for batches before this unit's that still have pending PARTs (the run proceeds anyway)."""
    if unit.batch is None:
        return []
    out = []
    for b in plan.batches:
        if b.number == unit.batch:
            break
        pending = [p.number for p in b.parts if p.status != "done"]
        if pending:
            out.append(
                f"BATCH {b.number} is unfinished (PART{'s' if len(pending) > 1 else ''} "
                f"{', '.join(map(str, pending))} pending); running {unit.label} anyway"
            )
    return out
