"""The CLI's small promises (issue 25, items 4 and 15): one writer per workspace, flags that refuse
bad input before doing anything, help without placeholders, -h, shell completion."""

from __future__ import annotations

import os

from kb.runner.lock import workspace_lock
from kb.workspace import init_workspace

PLAN = ("# Knowledge Expansion: L\n\n# BATCH 1: B\n\n## PART 1: One\n"
        "- [✓] PART 1: Create t/one.md (Completed 2025-01-01 01:01)\n")


def _workspace(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "plans" / "p.md").write_text(PLAN, encoding="utf-8")
    return workspace


def test_plan_reset_waits_for_no_one_while_another_kb_holds_the_workspace(kb_cli, tmp_path):
    workspace = _workspace(tmp_path)
    with workspace_lock(workspace, "kb run-plan plans/p.md"):
        result = kb_cli("plan", "reset", "plans/p.md", cwd=workspace.root)
    assert result.code == 2, result.out
    assert result.err.count("\n") == 1 and "is locked by kb process" in result.err and "kb run-plan" in result.err
    assert (workspace.root / "plans" / "p.md").read_text(encoding="utf-8") == PLAN
    free = kb_cli("plan", "reset", "plans/p.md", cwd=workspace.root)
    assert free.code == 0, free.err
    assert "[ ] PART 1" in (workspace.root / "plans" / "p.md").read_text(encoding="utf-8")


def test_validate_snippets_takes_the_workspace_lock(kb_cli, tmp_path):
    workspace = _workspace(tmp_path)
    with workspace_lock(workspace, "kb consolidate"):
        result = kb_cli("validate-snippets", cwd=workspace.root)
    assert result.code == 2, result.out
    assert result.err.count("\n") == 1 and "is locked by kb process" in result.err


def test_junit_into_a_missing_folder_is_refused_and_makes_no_folder(kb_cli, tmp_path):
    workspace = _workspace(tmp_path)
    target = tmp_path / "nonexistent" / "dir" / "j.xml"
    result = kb_cli("validate-snippets", "--junit", str(target), cwd=workspace.root)
    assert result.code == 2
    assert result.err.count("\n") == 1 and "does not exist" in result.err
    assert not (tmp_path / "nonexistent").exists()
    assert not (workspace.root / "snippets" / "results.json").exists()  # refused before anything ran


def test_gpu_without_cuda_prints_its_error_on_the_first_line(kb_cli, tmp_path):
    workspace = _workspace(tmp_path)
    result = kb_cli("validate-snippets", "--gpu", cwd=workspace.root, env={"CUDA_VISIBLE_DEVICES": ""})
    if result.code == 0:
        return  # a machine with CUDA: nothing to refuse
    assert result.code == 2
    assert result.err.startswith("kb: error: --gpu"), repr(result.err[:80])


def test_help_shows_no_type_placeholders_for_flags_or_lists(kb_cli):
    for command in (["init"], ["validate-snippets"], ["run-plan"], ["report"], ["plan", "show"]):
        result = kb_cli(*command, "--help")
        assert result.code == 0, result.err
        assert "<bool>" not in result.out and "<list[" not in result.out, (command, result.out)
    assert "<int" in kb_cli("run-plan", "--help").out  # options that take a value keep theirs


def test_dash_h_is_help_everywhere(kb_cli):
    for command in ([], ["init"], ["plan"], ["plan", "reset"], ["validate-snippets"]):
        result = kb_cli(*command, "-h")
        assert result.code == 0, (command, result.err)
        assert "Usage: kb" in result.out


def test_shell_completion_completes_commands_and_options(tmp_path):
    import subprocess
    import sys

    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "_KB_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        proc = subprocess.run([sys.executable, "-m", "kb"], env=env, capture_output=True, text=True, cwd=tmp_path,
                              timeout=60)
        return proc.stdout.split()

    assert complete("kb pl", 1) == ["plan"]
    assert "--batch" in complete("kb run-plan --ba", 2)
    assert "--install-completion" in __import__("conftest").run_kb("--help").out


def test_the_run_header_counts_the_runners_that_can_be_busy(kb_cli, tmp_path):
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    sys.path.insert(0, str(tests))
    from runplan_fakes import plan_text

    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.plans_dir / "p.md").write_text(plan_text([1]), encoding="utf-8")
    result = kb_cli("run-plan", "plans/p.md", "--batch", "1", "--runners", "4", "--engine", "runplan_fakes:make_engine",
                    cwd=workspace.root, env={"PYTHONPATH": str(tests)})
    assert result.code == 0, result.err
    assert "1 PART pending, 1 at once" in result.out, result.out
