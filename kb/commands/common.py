"""Small things every command needs: consoles, JSON output, the workspace option."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from kb.errors import WorkspaceError
from kb.workspace import Workspace, find_workspace, open_workspace

WorkspaceOption = typer.Option(
    None, "--workspace", "-w", help="Workspace root (default: the folder holding kb.toml above the cwd)."
)


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def workspace_from(option: Path | None, near: Path | None = None) -> Workspace:
    """The workspace ``--workspace`` names, else the one holding ``near`` (a file the command was given), else the cwd's."""
    if option is not None:
        return open_workspace(option)
    if near is not None:
        # `kb run-plan demo/plans/x.md` from outside demo/ means demo's workspace, not the cwd's.
        try:
            return find_workspace((near if near.is_absolute() else Path.cwd() / near).parent)
        except WorkspaceError:
            pass  # a file outside any workspace: the cwd's workspace refuses it with a clearer message
    return find_workspace()
