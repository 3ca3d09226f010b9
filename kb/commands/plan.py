"""`kb plan show|reset`: look at a plan, and untick its PARTs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from kb.commands.common import WorkspaceOption, console, err_console, print_json
from kb.errors import PlanError
from kb.plan import Plan, load_plan
from kb.plan.edit import EditResult, set_part_status
from kb.errors import WorkspaceError
from kb.workspace import Workspace, find_workspace, open_workspace

plan_app = typer.Typer(help="Inspect and edit expansion plans.", no_args_is_help=True)

STATUS_STYLE = {"done": "[green]done[/]", "pending": "[yellow]pending[/]", "failed": "[red]failed[/]"}


def _plan_workspace(path: Path, workspace_root: Path | None) -> Workspace | None:
    """The workspace a plan path belongs to (``--workspace``, else the one holding the file), or None."""
    try:
        near = path if path.is_absolute() else Path.cwd() / path
        return open_workspace(workspace_root) if workspace_root else find_workspace(near.parent)
    except WorkspaceError:
        return None


def resolve_plan_path(path: Path, workspace_root: Path | None) -> tuple[Path, str]:
    """A plan path and how to show it. Inside a workspace it must stay inside it."""
    ws = _plan_workspace(path, workspace_root)
    root = ws.root if ws is not None else None
    candidate = path if path.is_absolute() else Path.cwd() / path
    if root is not None and not candidate.exists() and (root / path).exists():
        candidate = root / path
    resolved = candidate.resolve()
    if root is not None and (root == resolved or root in resolved.parents):
        return resolved, resolved.relative_to(root).as_posix()
    return resolved, str(path)


def plan_table(plan: Plan) -> Table:
    table = Table(title=plan.title or plan.path, title_justify="left")
    table.add_column("batch", justify="right")
    table.add_column("part", justify="right")
    table.add_column("target", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("completed", no_wrap=True)
    table.add_column("sections", justify="right")
    table.add_column("queries", justify="right")
    for batch in plan.batches:
        for part in batch.parts:
            table.add_row(
                batch.label if part is batch.parts[0] else "",
                str(part.number),
                part.target or "[red](none)[/]",
                STATUS_STYLE[part.status],
                part.completed_at or "",
                str(len(part.sections)),
                str(len(part.searches)),
            )
        if not batch.parts:
            table.add_row(batch.label, "", "[red](no parts)[/]", "", "", "", "")
        table.add_section()
    return table


def print_problems(plan: Plan) -> None:
    out = console()
    for repair in plan.repairs:
        out.print(f"[cyan]repaired[/] {plan.path}: {repair}")
    for problem in plan.problems:
        out.print(f"[red]problem[/] {plan.path}:{problem.line}: {problem.message}")


@plan_app.command("show")
def show(
    path: Path = typer.Argument(..., help="The plan file."),
    as_json: bool = typer.Option(False, "--json", help="Print the parsed plan as JSON."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Show a plan's batches, parts, status and problems (exit 0 when it parsed, even with problems)."""
    resolved, display = resolve_plan_path(path, workspace)
    plan = load_plan(resolved, display)
    if as_json:
        print_json(plan.to_dict())
        return
    out = console()
    out.print(plan_table(plan))
    for batch in plan.batches:
        number = f" (--batch {batch.number})" if batch.label != str(batch.number) else ""
        out.print(f"  BATCH {batch.label}: {batch.name}{number}")
    done = sum(p.status == "done" for p in plan.parts)
    out.print(f"{len(plan.batches)} batches, {len(plan.parts)} parts, {done} done, {len(plan.problems)} problems")
    print_problems(plan)


@plan_app.command("reset")
def reset(
    path: Path = typer.Argument(..., help="The plan file."),
    batch: int | None = typer.Option(None, "--batch", help="Only this batch."),
    part: int | None = typer.Option(None, "--part", help="Only this PART."),
    as_json: bool = typer.Option(False, "--json", help="Print what changed as JSON."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Untick PARTs (all, one batch, or one PART); only their status lines change."""
    resolved, display = resolve_plan_path(path, workspace)
    ws = _plan_workspace(resolved, workspace)
    if ws is None:
        result = _reset(resolved, display, batch, part)
    else:
        from kb.runner.lock import workspace_lock

        # The workspace's one writer lock, as run-plan and consolidate take it: no reset under a running batch.
        with workspace_lock(ws, f"kb plan reset {display}"):
            result = _reset(resolved, display, batch, part)
    if as_json:
        print_json({"plan": display, "reset": result.changed_parts, "repairs_written": result.repairs_written})
        return
    out = console()
    for repair in result.repairs_written:
        err_console().print(f"[cyan]wrote the plan back repaired[/]: {repair}")
    if result.changed_parts:
        out.print(f"Reset {len(result.changed_parts)} PARTs in {display}: {', '.join(map(str, result.changed_parts))}")
    else:
        out.print(f"Nothing to reset in {display}: the chosen PARTs are already pending.")


def _reset(resolved: Path, display: str, batch: int | None, part: int | None) -> EditResult:
    plan = load_plan(resolved, display)
    if batch is not None and plan.batch(batch) is None:
        raise PlanError(f"{display}: there is no BATCH {batch}")
    if part is not None and plan.part(part) is None:
        raise PlanError(f"{display}: there is no PART {part}")
    chosen = [
        p
        for p in plan.parts
        if (batch is None or p.batch == batch) and (part is None or p.number == part) and p.status_line is not None
    ]
    return set_part_status(resolved, {p.number: "pending" for p in chosen})


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
