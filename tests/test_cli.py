"""The command line's shell: one command's module imported per run, every command in --help."""

from __future__ import annotations

import subprocess
import sys

from kb.cli import COMMANDS, invoked_command


def test_a_command_imports_only_its_own_module():
    code = ("import sys; from kb.cli import build_app; build_app('validate-snippets'); "
            "print(sorted(m for m in sys.modules if m.startswith('kb.commands.') and m != 'kb.commands.common'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['kb.commands.validate']"


def test_help_and_unknown_words_get_every_command(kb_cli):
    assert invoked_command(["run-plan", "plans/p.md"]) == "run-plan"
    assert invoked_command(["--help"]) is None and invoked_command(["run-plans"]) is None and invoked_command([]) is None
    listing = kb_cli("--help").out
    assert all(command in listing for command in COMMANDS)
    typo = kb_cli("run-plans", "x.md")
    assert typo.code == 2 and "No such command 'run-plans'" in typo.err
    single = kb_cli("report", "--help")
    assert single.code == 0 and "--strict" in single.out
