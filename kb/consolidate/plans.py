"""Plans as consolidation sees them: which PARTs are done, what they read and cite, and
which plans are finished (every PART done, every drop consolidated) and move to completed/."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kb.errors import KbError
from kb.plan import load_plan

COMPLETED = "plans/completed"


def plan_info(root: Path, rel: str) -> dict[str, Any] | None:
    """A plan reduced to what consolidation checks; None for a Markdown file that is no plan."""
    try:
        plan = load_plan(root / rel, rel)
    except KbError:
        return None
    return {
        "title": plan.title,
        "parts": [
            {
                "number": part.number,
                "batch": part.batch,
                "status": part.status,
                "line": part.status_line or part.line,
                "target": part.target,
                "reads": [[read.path, read.line] for read in part.reads],
                "cite": list(part.cite),
            }
            for part in plan.parts
        ],
    }


def is_finished(info: dict[str, Any] | None) -> bool:
    parts = (info or {}).get("parts") or []
    return bool(parts) and all(p["status"] == "done" for p in parts)


def completed_destination(rel: str) -> str:
    """``plans/x.md`` -> ``plans/completed/x.md`` (sub-folders of plans/ are kept)."""
    inner = PurePosixPath(rel).relative_to("plans")
    return (PurePosixPath(COMPLETED) / inner).as_posix()


def resolve_plan_link(value: str | None, plan_files: set[str], moves: dict[str, str]) -> str | None:
    """Where a plan named in front matter or a drop lives now (after this run's moves), if anywhere."""
    if not value:
        return None
    value = value.strip().replace("\\", "/")
    while value.startswith("./"):
        value = value[2:]
    if value in moves:
        return moves[value]
    if value in plan_files:
        return value
    name = PurePosixPath(value).name
    for candidate in (f"plans/{name}", f"{COMPLETED}/{name}"):
        if candidate in moves:
            return moves[candidate]
        if candidate in plan_files:
            return candidate
    return None
