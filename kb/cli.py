"""The ``kb`` command line: one typer app, one module per command under kb/commands/."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from kb import __version__
from kb.errors import KbError

# Each module defines register(app); the order is the order of `kb --help`.
COMMAND_MODULES = ("init", "plan", "serve", "consolidate", "validate", "run_plan", "report")

app = typer.Typer(
    name="kb",
    help="Compile a curated Markdown knowledge base from expansion plans.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"kb {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """kb: expansion plans -> runner tasks -> a knowledge base."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"kb.commands.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        app(args=argv, prog_name="kb")
    except KbError as exc:
        # escape(): messages name things like [llm.openai] that rich would eat as markup.
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]kb: error:[/] {escape(str(exc))}")
        sys.exit(exc.exit_code)
