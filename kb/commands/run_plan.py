"""`kb run-plan`: run a plan's batches of runner tasks (LangGraph), with resume, review and a summary.

Exit codes: 0 every PART that ran is done (or there was nothing to do); 1 a PART
failed (its drop says why); 2 a mistake (bad plan path, options, config; a locked
workspace); 3 a person declined the review (--review).
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from kb.commands.common import WorkspaceOption, console, err_console, print_json, workspace_from
from kb.errors import ConfigError, PathError
from kb.fsutil import resolve_inside
from kb.plan import Plan, load_plan
from kb.runner import stages
from kb.runner.cleanup import remove_stale_temp_files
from kb.runner.lock import workspace_lock
from kb.runner.progress import ProgressView
from kb.runner.select import Selection, Unit, select_parts, unfinished_earlier, units_for
from kb.runner.state import RunContext, engine_model
from kb.runner.summary import counts_line, print_summary
from kb.runners import load_runners
from kb.workspace import Workspace

if TYPE_CHECKING:
    from kb.runner.run import RunOptions, RunOutcome

EXIT_FAILED = 1
EXIT_DECLINED = 3


def resolve_plan(ws: Workspace, plan: Path) -> tuple[Path, str]:
    """The plan file, which must lie inside the workspace (``../../x.md`` is refused), and its relative path."""
    candidate = plan if plan.is_absolute() else Path.cwd() / plan
    if not candidate.exists() and not plan.is_absolute() and (ws.root / plan).exists():
        candidate = ws.root / plan
    resolved = resolve_inside(ws.root, candidate, "plan")
    if not resolved.is_file():
        raise PathError(f"no plan file at {plan} (looked in {resolved})")
    return resolved, ws.rel(resolved)


def load_engine(ws: Workspace, engine: str | None, search: str | None, progress, **overrides: Any) -> Any:
    """The researcher + writer + check for this run.

    ``--engine module:function`` names a Python factory called as ``function(workspace,
    search=..., progress=..., **overrides)`` that returns an object with ``researcher``, ``writer``,
    ``check`` (and optionally ``model``): the hook the tests use to plug in slow or
    failing writers, and a way to try a writer without changing kb.
    """
    if engine and ":" in engine:
        module_name, _, attr = engine.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"--engine {engine}: cannot import the engine factory: {exc}") from None
        return factory(ws, search=search, progress=progress, **overrides)
    from kb.engine.factory import build_engine

    return build_engine(ws, engine=engine, search=search, progress=progress, **overrides)


def _dry_run_rows(ws: Workspace, selection: Selection, force: bool) -> list[dict]:
    rows = []
    for part in selection.parts:
        note = ""
        try:
            path, rel = stages.knowledge_target(ws, part)
            try:
                warning = stages.protect_human_edits(path, rel, force=force)
                note = warning or ("replaces the file kb wrote" if path.exists() else "")
            except stages.PartFailure as exc:
                note = f"would fail: {exc}"
        except stages.PartFailure as exc:
            rel, note = None, f"would fail: {exc}"
        _, missing = stages.read_context(ws, part)
        rows.append({
            "part": part.number,
            "title": part.title,
            "file": rel,
            "status": part.status,
            "sections": len(part.sections),
            "queries": len(part.searches),
            "reads": len(part.reads),
            "warnings": missing,
            "note": note,
        })
    return rows


def _dry_run(ws: Workspace, plan: Plan, units: list[Unit], redo: bool, force: bool, as_json: bool) -> None:
    report = []
    for unit in units:
        selection = select_parts(plan, unit, redo=redo)
        report.append({"label": unit.label, "warnings": unfinished_earlier(plan, unit),
                       "parts": _dry_run_rows(ws, selection, force), "done": [p.number for p in selection.done]})
    if as_json:
        print_json({"plan": plan.path, "dry_run": True, "units": report})
        return
    out = console()
    for unit in report:
        for warning in unit["warnings"]:
            out.print(f"[yellow]warning[/]: {warning}")
        if not unit["parts"]:
            out.print(f"{unit['label']}: nothing would run (every PART is done; --redo reruns them).")
            continue
        table = Table(title=f"{unit['label']}: would run {len(unit['parts'])} PARTs (dry run, nothing written)",
                      title_justify="left")
        for name in ("part", "file", "sections", "queries", "Step 0", "note"):
            table.add_column(name, overflow="fold")
        for row in unit["parts"]:
            reads = f"{row['reads'] - len([w for w in row['warnings'] if 'does not exist' in w])}/{row['reads']} exist"
            table.add_row(str(row["part"]), escape(row["file"] or "-"), str(row["sections"]), str(row["queries"]),
                          reads, escape(row["note"]))
        out.print(table)
        if unit["done"]:
            out.print(f"  already done, left alone: PART {', '.join(map(str, unit['done']))}")


def _terminal_reviewer(view: ProgressView, as_json: bool):
    def ask(payload: dict) -> dict:
        view.stop()
        err = err_console()
        # With --json, stdout is for the JSON document; the person reads stderr.
        print_summary(err if as_json else console(), payload["summary"])
        try:
            reply = err.input(f"Approve {payload.get('label') or 'this batch'} as reviewed? [y/N] ", markup=False)
        except EOFError:
            return {"approved": False, "note": "no answer (stdin closed)"}
        approved = reply.strip().lower() in ("y", "yes")
        return {"approved": approved, "note": "" if approved else (reply.strip() or "declined")}

    return ask


async def _run_units(ws: Workspace, plan_path: Path, units: list[Unit], *, options: RunOptions, force: bool,
                     engine: str | None, search: str | None, as_json: bool,
                     **overrides: Any) -> tuple[list[RunOutcome], list[str], bool]:
    from kb.runner.run import run_unit, unfinished

    out = console()
    # With --json, stdout carries only the JSON document: progress lines go to stderr.
    view = ProgressView(err_console(), live=False) if as_json else ProgressView(out)
    bundle = load_engine(ws, engine, search, view.note, **overrides)
    context = RunContext(
        workspace=ws,
        researcher=bundle.researcher,
        writer=bundle.writer,
        check=bundle.check,
        max_rewrites=ws.config.run.max_rewrites,
        force=force,
        model=engine_model(bundle),
    )
    outcomes: list[RunOutcome] = []
    warnings: list[str] = []
    declined = False
    try:
        for unit in units:
            plan = load_plan(plan_path, unit.plan)  # reread: earlier units ticked PARTs
            use_plan = getattr(bundle.researcher, "use_plan", None)
            if use_plan is not None:
                use_plan(plan)  # the local researcher scopes each PART's libraries by its plan's
            selection = select_parts(plan, unit, redo=options.redo)
            pending_run = await unfinished(ws, unit)
            if not selection.parts and not pending_run:
                if not as_json:
                    out.print(f"{unit.label}: nothing pending.")
                continue
            for warning in unfinished_earlier(plan, unit):
                warnings.append(warning)
                if not as_json:
                    err_console().print(f"[yellow]warning[/]: {warning}")
            if not as_json:
                what = "resuming the unfinished run" if pending_run and not (options.redo and not options.resume) else "running"
                out.print(f"{unit.label}: {what}, {len(selection.parts)} PART{'s' if len(selection.parts) != 1 else ''} "
                          f"pending, {min(options.runners, max(1, len(selection.parts)))} at once "
                          f"({getattr(bundle, 'engine', '?')} engine).")
            view.start(unit.label, selection.parts)
            try:
                outcome = await run_unit(ws, unit, context, options, on_event=view.event,
                                         ask=_terminal_reviewer(view, as_json))
            finally:
                view.stop()
            outcomes.append(outcome)
            if not as_json:
                for note in outcome.notes:
                    out.print(f"note: {note}")
                if outcome.reviewed is None:  # a reviewed batch showed its table at the prompt
                    print_summary(out, outcome.summary)
                out.print(f"{unit.label}: {counts_line(outcome.summary)} in {outcome.seconds:.1f} s.")
                if outcome.reviewed is not None:
                    verdict = "approved" if outcome.reviewed["approved"] else f"declined ({outcome.reviewed['note']})"
                    out.print(f"Review: {unit.label} {verdict}.")
            if outcome.reviewed is not None and not outcome.reviewed["approved"]:
                declined = True
                break  # later batches wait for a person
    finally:
        close = getattr(bundle.writer, "close", None)
        if close is not None:
            close()  # a warm sandbox worker the writer checks examples with (kb run-plan in-process: tests, benches)
    return outcomes, warnings, declined


def register(app: typer.Typer) -> None:
    @app.command("run-plan")
    def run_plan_cmd(
        plan: Path = typer.Argument(..., help="The plan file, inside the workspace (e.g. plans/performance.md)."),
        batch: int | None = typer.Option(None, "--batch", help="Run this batch's pending PARTs."),
        part: int | None = typer.Option(None, "--part", help="Run only this PART."),
        all_batches: bool = typer.Option(False, "--all", help="Every batch in order, with the review gate between."),
        resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run without redoing finished "
                                    "PARTs (a plain rerun does this too; with --redo, continue the redo)."),
        redo: bool = typer.Option(False, "--redo", help="Rerun PARTs that are already done."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run; write nothing."),
        runners: int | None = typer.Option(None, "--runners", min=1, max=64,
                                           help="PARTs at once (default: kb.toml run.runners)."),
        review: bool = typer.Option(False, "--review", help="After each batch, ask in the terminal for approval "
                                    "before it is recorded as reviewed (a decline stops later batches)."),
        force: bool = typer.Option(False, "--force", help="Overwrite knowledge files a person edited since kb wrote them."),
        engine: str | None = typer.Option(None, "--engine", help="Writer engine: offline | openai | anthropic "
                                          "(default: kb.toml run.engine), or module:function, a Python factory "
                                          "returning an engine (a test/plugin hook)."),
        search: str | None = typer.Option(None, "--search", help="Search provider: local | searxng | tavily | brave "
                                          "(default: kb.toml run.search)."),
        as_json: bool = typer.Option(False, "--json", help="Print the run's summary as JSON (no live view)."),
        model: str | None = typer.Option(None, "--model", help="LLM engines: the model to use (overrides kb.toml "
                                         "and runners/writer.md)."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Do not answer search, page or LLM requests from "
                                      "the cache under .kb/cache (fresh answers still refresh it)."),
        budget_searches: int | None = typer.Option(None, "--budget-searches", min=0, help="Web research: at most this "
                                                   "many searches per PART (default: kb.toml [research] searches)."),
        budget_pages: int | None = typer.Option(None, "--budget-pages", min=0, help="Web research: at most this many "
                                                "pages fetched per PART."),
        budget_tokens: int | None = typer.Option(None, "--budget-tokens", min=0, help="At most this many model tokens "
                                                 "per PART: research's questions, then writing (sections past it are "
                                                 "marked empty)."),
        budget_usd: float | None = typer.Option(None, "--budget-usd", min=0, help="At most this many dollars per "
                                                "PART, research and writing ([prices] in kb.toml)."),
        workspace: Path | None = WorkspaceOption,
    ) -> None:
        """Run a plan's PARTs as runner tasks: context, research, write, check, drop, tick.

        With no --batch/--part/--all, runs the first batch that has a pending PART.

        A killed run is resumed by the next run of the same batch; finished PARTs are not redone.

        Exit 0: done (or nothing to do); 1: a PART failed; 2: a mistake; 3: the review was declined."""
        ws = workspace_from(workspace, near=plan)
        plan_path, plan_rel = resolve_plan(ws, plan)
        parsed = load_plan(plan_path, plan_rel)
        units = units_for(parsed, batch=batch, part=part, all_batches=all_batches)
        load_runners(ws.runners_dir)  # a broken runner definition is a ConfigError before anything runs
        if dry_run:
            _dry_run(ws, parsed, units, redo, force, as_json)
            return
        # LangGraph takes most of a second to import: only commands that run a graph pay for it.
        from kb.runner.run import RunOptions, unfinished

        options = RunOptions(runners=runners or ws.config.run.runners, redo=redo, review=review, resume=resume)
        budget = {k: v for k, v in {"searches": budget_searches, "pages": budget_pages, "tokens": budget_tokens,
                                    "usd": budget_usd}.items() if v is not None}
        with workspace_lock(ws, f"kb run-plan {plan_rel}"):
            pending = [u for u in units if select_parts(parsed, u, redo=redo).parts or asyncio.run(unfinished(ws, u))]
            if not pending:
                what = ", ".join(u.label for u in units)
                if as_json:
                    print_json({"plan": plan_rel, "nothing_to_do": True, "runs": [], "warnings": [], "exit_code": 0})
                else:
                    console().print(f"Nothing to do: every PART of {what} in {plan_rel} is done (--redo reruns them).")
                return
            removed = remove_stale_temp_files([ws.knowledge_dir, ws.drop_folder(plan_path), plan_path.parent])
            if removed and not as_json:
                err_console().print(f"removed {len(removed)} temporary file(s) a killed run left behind")
            try:
                outcomes, warnings, declined = asyncio.run(_run_units(
                    ws, plan_path, units, options=options, force=force, engine=engine, search=search, as_json=as_json,
                    **({"model": model} if model else {}), **({"no_cache": True} if no_cache else {}),
                    **({"budget": budget} if budget else {})))
            except KeyboardInterrupt:
                err_console().print("interrupted: rerun the same command to resume (finished PARTs are kept)")
                raise typer.Exit(130) from None
        failed = [row for o in outcomes for row in o.failed]
        code = EXIT_FAILED if failed else (EXIT_DECLINED if declined else 0)
        if as_json:
            print_json({"plan": plan_rel, "nothing_to_do": False, "runs": [o.to_dict() for o in outcomes],
                        "warnings": warnings, "removed_temp_files": [ws.rel(p) for p in removed], "exit_code": code})
        else:
            out = console()
            if failed:
                out.print(f"[red]{len(failed)} PART{'s' if len(failed) > 1 else ''} failed[/] "
                          f"({escape(', '.join(str(r['part']) for r in failed))}): their drops record why; "
                          "they stay unticked, so a rerun retries them.")
            if declined:
                out.print("Review declined: later batches were not run.")
        if code:
            raise typer.Exit(code)
