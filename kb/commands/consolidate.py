"""`kb consolidate`: the oracle step (drops -> INDEX.md, SKILL.md, completed plans, one commit)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import typer

from kb.commands.common import WorkspaceOption, console, err_console, print_json, workspace_from
from kb.consolidate import Result, consolidate
from kb.consolidate.model import KINDS
from kb.consolidate.message import parts_label, ranges
from kb.errors import KbError

SHOWN_PER_KIND = 10


def _print(result: Result) -> None:
    out = console()
    if result.nothing_to_consolidate and not result.commit:
        out.print("Nothing to consolidate: no new drops, and INDEX.md and SKILL.md are up to date.")
    else:
        if result.drops:
            failed = sum(1 for d in result.drops if d.status not in ("complete", "partial"))
            partial = sum(1 for d in result.drops if d.status == "partial")  # some sections marked empty
            added, changed = len(result.added), len(result.changed)
            verb = "Would consolidate" if result.dry_run else "Consolidated"
            line = (f"{verb} {len(result.drops)} {'drop' if len(result.drops) == 1 else 'drops'}: "
                    f"{added} {'file' if added == 1 else 'files'} added, {changed} changed")
            out.print(line + (f", {failed} failed PARTs" if failed else "")
                      + (f", {partial} partial (sections marked empty)" if partial else "") + ".")
        for plan in result.plans:
            parts = f" BATCH {ranges(plan.batches)}, {parts_label(plan.parts)}" if plan.parts else ""
            moved = (f"; complete, {'would move' if result.dry_run else 'moved'} to {plan.moved_to}" if plan.moved_to else "")
            out.print(f"  {plan.path}:{parts}{moved}")
        totals = result.totals
        index_state = ("would change" if result.dry_run else "updated") if result.index_changed else "unchanged"
        skill_state = ("would change" if result.dry_run else "updated") if result.skill_changed else "unchanged"
        out.print(
            f"INDEX.md {index_state}: {_count(totals.get('files', 0), 'file')} in "
            f"{_count(totals.get('topics', 0), 'topic')}, {_count(totals.get('sections', 0), 'section')}, "
            f"{_count(totals.get('sources', 0), 'source')}, {_count(totals.get('snippets', 0), 'snippet')}"
            + (f" ({totals['validation']})" if totals.get("validation") else "") + ".",
            soft_wrap=True,
        )
        out.print(f"SKILL.md {skill_state}" + (f" (name: {result.skill_name})." if result.skill_name else "."))
        if result.dry_run:
            shown = "; ".join(f"{name} as it would be: {where}" for name, where in result.previews.items())
            out.print("Dry look (--no-commit): no file was written" + (f" ({shown})" if shown else "")
                      + "; `kb consolidate` does it.", soft_wrap=True)
    if result.commit:
        out.print(f"Committed {result.commit['sha'][:10]}: {result.commit['summary']} ({result.commit['files']} paths).", soft_wrap=True)
    elif result.commit_skipped and not result.nothing_to_consolidate:
        out.print(f"No commit: {result.commit_skipped}.")
    _print_warnings(result)
    _print_errors(result)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _print_warnings(result: Result) -> None:
    if not result.warnings:
        return
    err = err_console()
    by_kind = defaultdict(list)
    for warning in result.warnings:
        by_kind[warning.kind].append(warning)
    kinds = sorted(by_kind, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS))
    if result.nothing_to_consolidate and not result.commit:
        # Already shown by the run that produced them: a reminder is enough.
        counts = ", ".join(f"{kind} {len(by_kind[kind])}" for kind in kinds)
        err.print(f"[yellow]{_count(len(result.warnings), 'warning')}[/] still stand ({counts}); kb consolidate --json lists them.")
        return
    err.print(f"[yellow]{_count(len(result.warnings), 'warning')}[/]:")
    for kind in kinds:
        items = by_kind[kind]
        err.print(f"  [yellow]{kind}[/] ({len(items)})")
        for warning in items[:SHOWN_PER_KIND]:
            err.print(f"    {warning.message}", markup=False)
        if len(items) > SHOWN_PER_KIND:
            err.print(f"    ... and {len(items) - SHOWN_PER_KIND} more (kb consolidate --json lists all)")


def _print_errors(result: Result) -> None:
    """Broken knowledge files, last: what the person must fix."""
    if not result.errors:
        return
    err = err_console()
    still = " still stand" if result.nothing_to_consolidate and not result.commit else ""
    err.print(f"[red]{_count(len(result.errors), 'error')}[/]{still} (broken knowledge files, indexed as well as they could be; "
              "kb consolidate --strict refuses them):")
    for error in result.errors:
        err.print(f"  {error.message}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("consolidate")
    def consolidate_cmd(
        no_commit: bool = typer.Option(False, "--no-commit", help="A dry look: say what consolidate would do and write no "
                                       "file of the tree (the INDEX.md and SKILL.md it would write go to "
                                       ".kb/consolidate/preview/ to compare); nothing is committed or remembered."),
        write_only: bool = typer.Option(False, "--write-only", help="Write INDEX.md and SKILL.md and file finished plans, "
                                        "but stamp no drop and make no commit (a workspace outside git; the run that "
                                        "commits stamps the drops)."),
        as_json: bool = typer.Option(False, "--json", help="Print what was done, and every warning and error, as JSON."),
        strict: bool = typer.Option(False, "--strict", help="Refuse to write or commit anything while a knowledge file is broken "
                                    "(front matter never closed or not YAML, not UTF-8)."),
        workspace: Path | None = WorkspaceOption,
    ) -> None:
        """Consolidate new drops: rewrite INDEX.md and SKILL.md, file finished plans as completed,
        stamp the drops, and commit only the paths kb manages (the layout's knowledge root, drops and
        plans, snippets/, INDEX.md, SKILL.md).

        Exit 0 when done or when there is nothing to consolidate; 1 when a knowledge file is broken
        (done all the same, the files listed as errors); 2 for a mistake (no workspace, not a git
        repository without --write-only or --no-commit, broken markers or template, broken files with --strict)."""
        if no_commit and write_only:
            raise KbError("--no-commit (a dry look, nothing written) and --write-only (write, no commit) exclude each other")
        ws = workspace_from(workspace)
        if as_json:
            result = consolidate(ws, commit=not (no_commit or write_only), strict=strict, dry_run=no_commit)
            print_json(result.to_dict())
        else:
            err = err_console()
            with err.status("Consolidating...") as status:
                result = consolidate(ws, commit=not (no_commit or write_only), strict=strict, dry_run=no_commit,
                                     progress=lambda msg: status.update(f"Consolidating: {msg}..."))
            _print(result)
        if result.errors:
            raise typer.Exit(1)
