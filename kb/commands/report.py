"""`kb report`: a quality report over the workspace (per knowledge file, totals, plan progress)."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.commands.common import WorkspaceOption, console, print_json, workspace_from


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document (files, totals, plans, problems)."),
        strict: bool = typer.Option(
            False, "--strict",
            help="Exit 1 when any planned section is missing, any citation names no source, any snippet failed, "
                 "a knowledge file is unreadable, or a done PART's file is gone (a CI gate).",
        ),
        workspace_root: Path = WorkspaceOption,
    ) -> None:
        """Report the knowledge base's quality from what the other commands wrote.

        Per knowledge file: planned sections present, sections citing a source, citations that resolve to a front-matter source, sources by kind, snippets by status (from snippets/results.json) and its drops; then totals and each plan's progress.

        Exit codes: 0; 1 with --strict when there are problems; 2 on a usage error (no workspace).
        """
        from kb.report import collect_report
        from kb.report.render import print_report

        result = collect_report(workspace_from(workspace_root))
        if as_json:
            print_json(result.to_dict())
        else:
            print_report(console(), result)
        if strict and result.problems():
            raise typer.Exit(1)
