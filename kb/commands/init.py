"""`kb init DIR [--plan FILE]`: a new workspace skeleton, optionally seeded with plans to run."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.commands.common import console, print_json
from kb.corpus.propose import propose_corpus
from kb.errors import KbError, PathError, PlanError
from kb.fsutil import atomic_write_bytes
from kb.plan import Plan, load_plan
from kb.plan.edit import set_part_status
from kb.workspace import CONFIG_NAME, Workspace, init_workspace, open_workspace


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


def _first_commit(root: Path, plans: list[dict]) -> tuple[str | None, str | None]:
    """Commit what ``kb init`` wrote as the new repository's first commit: (short hash, None), or
    (None, why not) where git cannot commit (no identity configured)."""
    import git

    repo = git.Repo(root)
    try:
        repo.git.var("GIT_COMMITTER_IDENT")
        repo.git.var("GIT_AUTHOR_IDENT")
    except git.GitCommandError:
        return None, "git has no identity (git config user.name and user.email), so no first commit was made"
    message = "kb init: a new kb workspace"
    if plans:
        message += "\n\n" + "\n".join(f"{p['plan']}: {p['parts']} PARTs, from {Path(p['from']).name}" for p in plans)
    try:
        repo.git.add("-A", "--", ".")
        repo.git.commit("-q", "-m", message)
    except git.GitCommandError as exc:
        return None, f"git commit failed: {(exc.stderr or str(exc)).strip()}"
    return repo.head.commit.hexsha[:7], None


def _plan_shape(plan: Plan) -> tuple:
    """What makes two copies of a plan the same plan, whatever their ticks say."""
    return plan.title, [(p.number, p.target) for p in plan.parts]


def already_made(directory: Path, sources: list[Path]) -> Workspace | None:
    """The workspace in ``directory`` when an earlier ``kb init`` made it with these same plans (a rerun
    of the same command), else None."""
    if not sources or not (directory / CONFIG_NAME).is_file():
        return None
    try:
        ws = open_workspace(directory)
        for source in sources:
            copy = ws.plans_dir / source.expanduser().name
            if not copy.is_file() or _plan_shape(load_plan(copy)) != _plan_shape(load_plan(source.expanduser())):
                return None
    except KbError:
        return None
    return ws


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
        git_init: bool = typer.Option(True, "--git/--no-git", help="git init the folder and commit the new "
                                      "workspace, unless it already lies in a git repository (kb consolidate commits "
                                      "there)."),
        as_json: bool = typer.Option(False, "--json", help="Print what was created as JSON."),
        adopt: bool = typer.Option(False, "--adopt", help="Adopt an existing tree in place: write kb.toml with "
                                   "the layout found (knowledge root, drops, plans, completed plans), move nothing."),
        knowledge: str | None = typer.Option(None, "--knowledge", metavar="ROOT", help="With --adopt: the knowledge "
                                             "root, a folder of the tree (e.g. skills/gpu), where it is neither "
                                             "knowledge/ nor the tree itself."),
    ) -> None:
        """Create a workspace: folders, kb.toml, runners/, validators/, INDEX.md, SKILL.md."""
        if knowledge is not None and not adopt:
            raise KbError("--knowledge goes with --adopt (a new workspace keeps its knowledge in knowledge/)")
        if adopt:
            _adopt(directory, as_json, knowledge)
            return
        for source in plans:  # refuse a missing plan before creating anything
            if not source.expanduser().is_file():
                raise PathError(f"no plan file at {source}; nothing created")
        made = already_made(directory.resolve(), plans)
        if made is not None:
            # The same command again (the README's set-up line, rerun): nothing to do, and no error.
            names = [made.rel(made.plans_dir / source.expanduser().name) for source in plans]
            if as_json:
                print_json({"root": str(made.root), "created": [], "plans": [], "git_init": False, "commit": None,
                            "already": names})
            else:
                console().print(f"{made.root} is already a kb workspace with {', '.join(names)} from the same "
                                "plan; nothing changed.", soft_wrap=True)
            return
        workspace, created = init_workspace(directory)
        copied = [add_plan(workspace, source) for source in plans]
        corpus = propose_corpus(workspace, [workspace.root / p["plan"] for p in copied]) if copied else None
        repo = _git_init(workspace.root) if git_init else False
        commit, why = _first_commit(workspace.root, copied) if repo else (None, None)
        if as_json:
            print_json({"root": str(workspace.root), "created": created, "plans": copied, "git_init": repo,
                        "commit": commit, **({"commit_skipped": why} if why else {}), "corpus_packages": corpus})
            return
        out = console()
        out.print(f"Created a kb workspace in [bold]{workspace.root}[/] ({len(created)} entries"
                  + ("; a new git repository" if repo else "")
                  + (f", first commit {commit}" if commit else "") + ").")
        if why:
            out.print(f"[yellow]note[/]: {why}.")
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


def _adopt(directory: Path, as_json: bool, knowledge: str | None = None) -> None:
    """``kb init --adopt DIR``: kb.toml for an existing tree, and what was found there."""
    from kb.workspace import adopt_workspace

    ws, layout = adopt_workspace(directory, knowledge)
    found = {
        "knowledge_files": len(ws.knowledge_files()),
        "drops": len(ws.layout_files("drops")),
        "plans": len(ws.layout_files("plans")),
        "completed_plans": len(ws.layout_files("completed")),
        "skill_md": ws.skill_path.is_file(),
    }
    if as_json:
        print_json({"root": str(ws.root), "created": [CONFIG_NAME], "layout": layout, "found": found})
        return
    out = console()
    out.print(f"Adopted {ws.root}: wrote {CONFIG_NAME}; no other file was written or moved.", soft_wrap=True)
    where = "the tree itself (topic folders at its top)" if layout["knowledge"] == "." else f"{layout['knowledge']}/"
    out.print(f"  knowledge root: {where}: {found['knowledge_files']} Markdown files", soft_wrap=True)
    for key, label in (("drops", "drops"), ("plans", "plans"), ("completed", "completed_plans")):
        out.print(f"  {key}: {', '.join(layout[key])}: {found[label]} files", soft_wrap=True)
    out.print("  SKILL.md: " + ("found; its front matter and text stay yours" if found["skill_md"] else "none yet"))
