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
COMMANDS = {
    "init": "init",
    "plan": "plan",
    "serve": "serve",
    "consolidate": "consolidate",
    "validate-snippets": "validate",
    "run-plan": "run_plan",
    "report": "report",
    "curate": "curate",
}


def _version(value: bool) -> None:
    if value:
        print(f"kb {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """kb: expansion plans -> runner tasks -> a knowledge base."""


def _plain_help_types() -> None:
    """typer labels every parameter's type in --help, flags included (``<bool>``) and lists as
    ``<list[Path]>``: a flag takes no value, so it gets no label, and a list reads as its items' type."""
    from typer import core

    base = getattr(core, "_TyperParameter", None)
    original = getattr(base, "display_type", None)
    if original is None or getattr(original, "_kb_plain", False):
        return  # another typer: leave its help as it is

    def display_type(self, ctx):
        if getattr(self, "is_flag", False):
            return None
        label = original(self, ctx)
        if isinstance(label, str) and label.startswith("<list[") and label.endswith("]>"):
            return f"<{label[6:-2].lower()}>"
        return label

    display_type._kb_plain = True
    base.display_type = display_type


def build_app(only: str | None = None) -> typer.Typer:
    """The typer app with every command, or with just ``only`` (its module alone is imported)."""
    _plain_help_types()
    app = typer.Typer(
        name="kb",
        help="Compile a curated Markdown knowledge base from expansion plans.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for command, module in COMMANDS.items():
        if only is None or command == only:
            importlib.import_module(f"kb.commands.{module}").register(app)
    return app


def invoked_command(argv: list[str]) -> str | None:
    """The command the arguments name, if they start with one of ours; else None (``--help``, typos...)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    # Importing every command's module costs about as much as a quick command itself.
    app = build_app(invoked_command(args))
    try:
        app(args=args, prog_name="kb")
    except KbError as exc:
        # escape(): messages name things like [llm.openai] that rich would eat as markup.
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]kb: error:[/] {escape(str(exc))}")
        sys.exit(exc.exit_code)
