"""`kb init DIR`: a new workspace skeleton."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.commands.common import console, print_json
from kb.workspace import init_workspace


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        directory: Path = typer.Argument(Path("."), help="Folder for the new workspace (created if missing)."),
        as_json: bool = typer.Option(False, "--json", help="Print what was created as JSON."),
    ) -> None:
        """Create a workspace: folders, kb.toml, runners/, validators/, INDEX.md, SKILL.md."""
        workspace, created = init_workspace(directory)
        if as_json:
            print_json({"root": str(workspace.root), "created": created})
            return
        out = console()
        out.print(f"Created a kb workspace in [bold]{workspace.root}[/] ({len(created)} entries).")
        out.print("Next: put a plan in plans/, then `kb plan show plans/<plan>.md` and `kb run-plan plans/<plan>.md --batch 1`.")
