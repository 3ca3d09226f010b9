"""The plans page's data: every plan's batches and PARTs with status, and the drops each PART left."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import KbError
from kb.plan import load_plan
from kb.records import read_drop
from kb.serve.layout import SiteLayout
from kb.serve.urls import page_for_source, plan_anchor


@dataclass
class DropView:
    rel: str  # workspace-relative path of the drop file
    page: str  # URL path of its page
    title: str
    status: str
    created: str
    plan: str | None
    batch: int | None
    part: int | None
    knowledge_file: str | None
    reason: str | None
    engine: str | None
    model: str | None
    seconds: float | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class PartView:
    number: int
    title: str
    target: str | None
    target_page: str | None  # URL path of the knowledge page when the file exists
    status: str
    completed_at: str | None
    drops: list[DropView] = field(default_factory=list)


@dataclass
class BatchView:
    number: int
    name: str
    parts: list[PartView] = field(default_factory=list)


@dataclass
class PlanView:
    rel: str
    anchor: str
    title: str
    completed: bool  # filed under plans/completed/
    metadata: dict[str, str] = field(default_factory=dict)
    batches: list[BatchView] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def parts(self) -> list[PartView]:
        return [p for b in self.batches for p in b.parts]

    @property
    def done(self) -> int:
        return sum(p.status == "done" for p in self.parts)


def load_drops(root: Path, layout: SiteLayout | None = None) -> list[DropView]:
    """Every drop under drops/ (``layout``: where the workspace keeps them), newest first; one that
    cannot be read is shown as failed with the reason."""
    layout = layout or SiteLayout()
    drops: list[DropView] = []
    for rel in layout.markdown_files(root, "drops"):
        try:
            record = read_drop(root / layout.real(rel))
        except (OSError, ValueError, KbError) as exc:
            drops.append(DropView(layout.real(rel), page_for_source(rel) or "", Path(rel).stem, "unreadable", "", None, None, None,
                                  None, str(exc), None, None, None))
            continue
        drops.append(
            DropView(
                rel=layout.real(rel),  # shown: the drop's path in the workspace
                page=page_for_source(rel) or "",
                title=record.title or Path(rel).stem,
                status=record.status,
                created=str(record.created or ""),
                plan=record.plan,
                batch=record.batch,
                part=record.part,
                knowledge_file=record.knowledge_file,
                reason=record.reason,
                engine=record.engine,
                model=record.model,
                seconds=record.seconds,
                warnings=list(record.warnings),
            )
        )
    drops.sort(key=lambda d: (d.created, d.rel), reverse=True)
    return drops


def _knowledge_rel(target: str | None) -> str | None:
    """A target as a workspace-relative path under knowledge/ (plans name it relative to knowledge/)."""
    if not target:
        return None
    rel = posixpath.normpath(target.strip("` ").replace("\\", "/")).lstrip("/")
    return rel if rel.startswith("knowledge/") else f"knowledge/{rel}"


def _belongs(drop: DropView, plan_rel: str, part_number: int, target: str | None, layout: SiteLayout) -> bool:
    same_plan = bool(drop.plan) and posixpath.basename(str(drop.plan)) == posixpath.basename(plan_rel)
    if same_plan and drop.part == part_number:
        return True
    # Drops of the older shape name no plan: their target file ties them to the PART.
    named = layout.source(drop.knowledge_file) if drop.knowledge_file and not layout.default else drop.knowledge_file
    return target is not None and _knowledge_rel(named) == target and (not drop.plan or same_plan)


def load_plans(root: Path, drops: list[DropView], layout: SiteLayout | None = None) -> tuple[list[PlanView], list[DropView]]:
    """Every plan under plans/ (completed ones too; ``layout``: where the workspace keeps them) and the drops no PART claimed."""
    layout = layout or SiteLayout()
    plans: list[PlanView] = []
    claimed: set[str] = set()
    for rel in layout.markdown_files(root, "plans"):
        # Shown by its path in the workspace; anchored by its source path (as links to it are).
        view = PlanView(rel=layout.real(rel), anchor=plan_anchor(rel), title=layout.real(rel), completed=layout.completed(rel))
        try:
            plan = load_plan(root / layout.real(rel), layout.real(rel))
        except (KbError, OSError, ValueError) as exc:  # one unreadable plan: said on its card, the rest shown
            view.error = str(exc)
            plans.append(view)
            continue
        view.title = plan.title or layout.real(rel)
        view.metadata = dict(plan.metadata)
        view.problems = [f"line {p.line}: {p.message}" for p in plan.problems]
        for batch in plan.batches:
            batch_view = BatchView(batch.number, batch.name)
            for part in batch.parts:
                target = _knowledge_rel(part.target)
                exists = target is not None and layout.file(root, target, "knowledge") is not None
                part_view = PartView(
                    number=part.number,
                    title=part.title,
                    target=part.target,
                    target_page=page_for_source(target) if exists else None,
                    status=part.status,
                    completed_at=part.completed_at,
                )
                part_view.drops = [d for d in drops if _belongs(d, rel, part.number, target, layout)]
                claimed.update(d.rel for d in part_view.drops)
                batch_view.parts.append(part_view)
            view.batches.append(batch_view)
        plans.append(view)
    # Plans still in progress first, then the ones filed under completed/.
    plans.sort(key=lambda p: (p.completed, p.rel))
    return plans, [d for d in drops if d.rel not in claimed]
