"""`kb init DIR [--plan FILE]`: a new workspace skeleton, optionally seeded with plans to run."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.commands.common import console, print_json
from kb.corpus.propose import propose_corpus
from kb.errors import PathError, PlanError
from kb.fsutil import atomic_write_bytes
from kb.plan import load_plan
from kb.plan.edit import set_part_status
from kb.workspace import Workspace, init_workspace


def _git_init(root: Path) -> bool:
    """Make ``root`` a git repository unless it already lies in one (consolidate commits there)."""
    import git

    try:
        git.Repo(root, search_parent_directories=True)
        return False
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        pass
    try:
        git.Repo.init(root)
    except git.GitCommandNotFound:
        return False  # kb works without git; consolidate says so when it needs it
    return True


def add_plan(ws: Workspace, source: Path) -> dict:
    """Copy a plan into the workspace's plans/ with every PART pending again; report what was reset."""
    source = source.expanduser()
    if not source.is_file():
        raise PathError(f"no plan file at {source}")
    plan = load_plan(source, str(source))  # a plan that does not parse is refused before anything is copied
    if not plan.parts:
        raise PlanError(f"{source}: no PARTs found; is this an expansion plan?")
    dest = ws.plans_dir / source.name
    if dest.exists():
        raise PathError(f"{ws.rel(dest)} already exists; nothing copied")
    atomic_write_bytes(dest, source.read_bytes())
    ticked = {p.number: "pending" for p in plan.parts if p.status != "pending" and p.status_line is not None}
    result = set_part_status(dest, ticked) if ticked else None
    return {"plan": ws.rel(dest), "from": str(source), "parts": len(plan.parts),
            "reset": result.changed_parts if result else [],
            "repairs_written": result.repairs_written if result else []}


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        directory: Path = typer.Argument(Path("."), help="Folder for the new workspace (created if missing)."),
        plans: list[Path] = typer.Option([], "--plan", help="Copy this plan into plans/ with every PART pending "
                                         "again (repeatable): a fresh run of an existing plan."),
        git_init: bool = typer.Option(True, "--git/--no-git", help="git init the folder unless it already lies "
                                      "in a git repository (kb consolidate commits there)."),
        as_json: bool = typer.Option(False, "--json", help="Print what was created as JSON."),
    ) -> None:
        """Create a workspace: folders, kb.toml, runners/, validators/, INDEX.md, SKILL.md."""
        for source in plans:  # refuse a missing plan before creating anything
            if not source.expanduser().is_file():
                raise PathError(f"no plan file at {source}; nothing created")
        workspace, created = init_workspace(directory)
        copied = [add_plan(workspace, source) for source in plans]
        corpus = propose_corpus(workspace, [workspace.root / p["plan"] for p in copied]) if copied else None
        repo = _git_init(workspace.root) if git_init else False
        if as_json:
            print_json({"root": str(workspace.root), "created": created, "plans": copied, "git_init": repo,
                        "corpus_packages": corpus})
            return
        out = console()
        out.print(f"Created a kb workspace in [bold]{workspace.root}[/] ({len(created)} entries"
                  + ("; a new git repository" if repo else "") + ").")
        for plan in copied:
            reset = f", {len(plan['reset'])} of them reset to pending" if plan["reset"] else ""
            out.print(f"Added {plan['plan']} ({plan['parts']} PARTs{reset}).")
        if corpus is not None:
            out.print(f"kb.toml \\[corpus] packages: {', '.join(corpus) or 'none'} (the installed libraries the plan names; "
                      "edit kb.toml to add packages or Markdown folders).")
        if copied:
            first = workspace.root / copied[0]["plan"]
            out.print(f"Next: `kb run-plan {first} --batch 1` (or `cd {workspace.root}` first).", soft_wrap=True)
        else:
            out.print("Next: put a plan in plans/, then `kb plan show plans/<plan>.md` and "
                      "`kb run-plan plans/<plan>.md --batch 1`.")
