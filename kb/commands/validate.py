"""`kb validate-snippets`: extract every snippet of the knowledge tree, run it sandboxed, report."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kb.commands.common import WorkspaceOption, console, err_console, workspace_from
from kb.errors import PathError
from kb.runner.lock import workspace_lock
from kb.snippets.report import print_report
from kb.snippets.results import results_text, write_junit
from kb.snippets.validate import Options, run_validation


def register(app: typer.Typer) -> None:
    @app.command("validate-snippets")
    def validate_snippets(
        paths: list[Path] = typer.Argument(None, help="Markdown files or folders (default: every knowledge file, under the knowledge root kb.toml's [layout] names)."),
        gpu: bool = typer.Option(False, "--gpu", help="Use the cuda profile; exit 2 at once when there is no CUDA device."),
        ray: str = typer.Option(None, "--ray", metavar="ADDRESS", help="Run on a Ray cluster: an address, 'auto', or 'local' for a local instance."),
        force: bool = typer.Option(False, "--all", help="Rerun every snippet, ignoring cached results."),
        as_json: bool = typer.Option(False, "--json", help="Print this run's results as JSON (the results.json shape)."),
        junit: Path = typer.Option(None, "--junit", metavar="FILE", help="Also write JUnit XML for CI."),
        profile: str = typer.Option(None, "--profile", help="Validator profile in validators/ (default: kb.toml's)."),
        jobs: int = typer.Option(None, "--jobs", "-j", min=1, help="CPU snippets at once (default: the profile's)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="List only snippets that did not pass."),
        require_isolation: bool = typer.Option(
            False, "--require-isolation",
            help="Refuse to run any snippet (exit 2) unless the sandbox isolates it fully here (filesystem, processes, network).",
        ),
        workspace_root: Path = WorkspaceOption,
    ) -> None:
        """Extract and run every code snippet; cache unchanged ones; exit 1 when any failed.

        Results go to snippets/results.json and snippets/<file>/<NN>-L<line>.py.
        """
        workspace = workspace_from(workspace_root)
        if junit is not None and not junit.expanduser().resolve().parent.is_dir():
            # Refused before anything runs, and no folder is made for it (a typo could make one at /).
            raise PathError(f"--junit {junit}: the folder {junit.expanduser().resolve().parent} does not exist")
        options = Options(paths=list(paths or []), gpu=gpu, ray=ray, force=force, profile=profile, jobs=jobs,
                          require_isolation=require_isolation)
        # The workspace's one writer lock (run-plan and consolidate take it too): results go to snippets/.
        with workspace_lock(workspace, "kb validate-snippets"):
            outcome = _validate(workspace, options, as_json)
            rows = outcome.rows
            if junit is not None:
                write_junit(junit, outcome.document, rows)
        if as_json:
            doc = dict(outcome.document)
            doc["snippets"] = rows
            doc["run"] = {"ran": outcome.ran, "cached": outcome.cached, "seconds": round(outcome.seconds, 3)}
            # One row per line, like results.json: indenting thousands of rows takes seconds.
            sys.stdout.write(results_text(doc))
        else:
            print_report(console(), rows, outcome.document, outcome.ran, outcome.cached, outcome.seconds, not quiet)
        if outcome.failed:
            raise typer.Exit(1)


def _validate(workspace, options: Options, as_json: bool):
    """Run the validation, with a progress bar on stderr unless the output is JSON."""
    err = err_console()
    if as_json or not err.is_terminal:
        # Off a terminal a transient bar cannot erase itself: it would leave a blank line before any error.
        return run_validation(workspace, options)
    with Progress(
        TextColumn("[bold]validating[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err, transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, entry) -> None:
            label = f"{entry.file}:{entry.snippet.line} {entry.status}" if entry is not None else ""
            bar.update(task, completed=done, total=total, description=label)

        return run_validation(workspace, options, progress)
