"""The commit: only managed paths, one commit, none on a rerun; plans move so that history follows them."""

from __future__ import annotations

import json

from conftest import run_kb
from kb.consolidate import consolidate
from test_consolidate_support import add_part, commits, make_workspace, plan_text, run_git


def committed_paths(root, ref="HEAD"):
    return sorted(run_git(root, "show", "--name-only", "--format=", ref).split())


def test_a_repo_with_no_commits_yet_gets_one_commit_then_none(tmp_path):
    ws = make_workspace(tmp_path)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    first = consolidate(ws)
    assert first.commit is not None and len(commits(ws.root)) == 1
    paths = committed_paths(ws.root)
    assert "knowledge/perf/00-a.md" in paths and "INDEX.md" in paths and "SKILL.md" in paths
    assert all(p.split("/")[0] in ("knowledge", "drops", "plans", "snippets", "INDEX.md", "SKILL.md") for p in paths)
    assert "kb.toml" not in paths  # kb's own config is the person's to commit
    again = consolidate(ws)
    assert again.nothing_to_consolidate and again.commit is None
    assert len(commits(ws.root)) == 1


def test_unrelated_staged_and_unstaged_work_stays_out_of_the_commit(tmp_path):
    ws = make_workspace(tmp_path)
    (ws.root / "notes.txt").write_text("v1\n")
    run_git(ws.root, "add", "notes.txt")
    run_git(ws.root, "commit", "-q", "-m", "base")
    # The person's work in progress: one staged change, one unstaged, one new staged file.
    (ws.root / "notes.txt").write_text("v2 staged\n")
    run_git(ws.root, "add", "notes.txt")
    (ws.root / "notes.txt").write_text("v3 unstaged\n")
    (ws.root / "draft.py").write_text("print('wip')\n")
    run_git(ws.root, "add", "draft.py")
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    result = consolidate(ws)
    assert result.commit is not None
    paths = committed_paths(ws.root)
    assert "notes.txt" not in paths and "draft.py" not in paths
    assert "knowledge/perf/00-a.md" in paths
    # Their staged work is still staged, exactly as it was; the unstaged edit is untouched.
    assert run_git(ws.root, "show", ":notes.txt") == "v2 staged\n"
    assert (ws.root / "notes.txt").read_text() == "v3 unstaged\n"
    status = run_git(ws.root, "status", "--porcelain", "--", "notes.txt", "draft.py").splitlines()
    assert sorted(status) == ["A  draft.py", "MM notes.txt"]
    # kb's own paths are clean: the index and the working tree both match the new commit.
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""
    message = run_git(ws.root, "log", "-1", "--format=%B")
    assert message.startswith("kb consolidate: 1 drop, 1 file added, 0 changed")
    assert "- knowledge/perf/00-a.md" in message and "Knowledge files added (1):" in message


def test_a_completed_plan_moves_and_keeps_its_history(tmp_path):
    ws = make_workspace(tmp_path)
    plan = "plans/perf.md"
    (ws.root / plan).write_text(plan_text([(1, "perf/00-a.md", True), (2, "perf/01-b.md", False)]))
    run_git(ws.root, "add", plan)
    run_git(ws.root, "commit", "-q", "-m", "add the plan")
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan=plan, part=1)
    result = consolidate(ws)
    assert result.plans[0].moved_to is None and (ws.root / plan).exists()  # PART 2 is not done
    add_part(ws, "perf/01-b.md", "Beta", 2, plan=plan, part=2)
    (ws.root / plan).write_text(plan_text([(1, "perf/00-a.md", True), (2, "perf/01-b.md", True)]))
    result = consolidate(ws)
    assert [p.moved_to for p in result.plans] == ["plans/completed/perf.md"]
    assert not (ws.root / plan).exists() and (ws.root / "plans/completed/perf.md").exists()
    history = run_git(ws.root, "log", "--follow", "--format=%s", "--", "plans/completed/perf.md").splitlines()
    assert history[-1] == "add the plan" and len(history) == 2
    renames = run_git(ws.root, "show", "-M", "--name-status", "--format=", "HEAD")
    assert "R" in renames and "plans/perf.md\tplans/completed/perf.md" in renames
    message = run_git(ws.root, "log", "-1", "--format=%B")
    assert "plans/perf.md: BATCH 1, PART 2 (1 drop); completed, moved to plans/completed/perf.md" in message
    # The INDEX links to the plan where it now lives.
    assert "](plans/completed/perf.md) PART 2" in ws.index_path.read_text()


def test_with_no_commit_a_tracked_plan_moves_with_git_mv(tmp_path):
    ws = make_workspace(tmp_path)
    plan = "plans/perf.md"
    (ws.root / plan).write_text(plan_text([(1, "perf/00-a.md", True)]))
    run_git(ws.root, "add", plan)
    run_git(ws.root, "commit", "-q", "-m", "add the plan")
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan=plan, part=1)
    assert consolidate(ws, commit=False).plans[0].moved_to == "plans/completed/perf.md"
    staged = run_git(ws.root, "diff", "--cached", "-M", "--name-status")
    assert "plans/perf.md\tplans/completed/perf.md" in staged  # the index has the move, nothing else kb wrote
    assert [line for line in staged.splitlines() if not line.startswith("R")] == []


def test_no_commit_then_commit_commits_what_was_consolidated(tmp_path):
    ws = make_workspace(tmp_path)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    result = consolidate(ws, commit=False)
    assert result.drops and result.commit is None and commits(ws.root) == []
    later = consolidate(ws)
    assert later.commit is not None and len(commits(ws.root)) == 1
    assert "1 drop" in later.commit["summary"]
    assert consolidate(ws).commit is None and len(commits(ws.root)) == 1


def test_a_workspace_inside_a_larger_repository(tmp_path):
    from test_consolidate_support import git_init

    git_init(tmp_path)
    (tmp_path / "README.md").write_text("outer\n")
    ws = make_workspace(tmp_path, git=False, name="kb-here")
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    assert consolidate(ws).commit is not None
    paths = committed_paths(tmp_path)
    assert "kb-here/knowledge/perf/00-a.md" in paths and "README.md" not in paths
    assert all(p.startswith("kb-here/") for p in paths)


def test_cli_outside_git_exits_2_unless_write_only(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    refused = run_kb("consolidate", cwd=ws.root)
    assert refused.code == 2 and "not inside a git repository" in refused.err
    assert "--write-only" in refused.err and len(refused.err.strip().splitlines()) == 1
    assert "consolidated: null" in next(ws.drops_dir.glob("KNOWLEDGE-DROP-*")).read_text()  # nothing happened
    both = run_kb("consolidate", "--write-only", "--no-commit", cwd=ws.root)
    assert both.code == 2 and "exclude each other" in both.err
    done = run_kb("consolidate", "--write-only", "--json", "-w", str(ws.root), cwd=tmp_path)
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert data["knowledge"]["added"] == ["knowledge/perf/00-a.md"] and data["commit"] is None
    assert {w["kind"] for w in data["warnings"]} <= {"dangling-cite", "missing-read", "unaccounted-file",
                                                    "missing-knowledge-file", "near-duplicate"}
    again = run_kb("consolidate", "--write-only", cwd=ws.root)
    assert again.code == 0 and "Nothing to consolidate" in again.out


def test_a_persons_edits_and_deletions_under_kb_paths_are_committed(tmp_path):
    ws = make_workspace(tmp_path)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    add_part(ws, "perf/01-b.md", "Beta", 2, plan="plans/p.md", part=2)
    consolidate(ws)
    # By hand: one knowledge file edited, one deleted; a runner adds a third.
    edited = ws.knowledge_dir / "perf/00-a.md"
    edited.write_text(edited.read_text() + "\nA note by hand.\n")
    (ws.knowledge_dir / "perf/01-b.md").unlink()
    add_part(ws, "perf/02-c.md", "Gamma", 3, plan="plans/p.md", part=3)
    result = consolidate(ws)
    assert result.commit is not None and len(commits(ws.root)) == 2
    status = dict(line.split("\t", 1)[::-1] for line in run_git(ws.root, "show", "--name-status", "--format=", "HEAD").splitlines())
    assert status["knowledge/perf/00-a.md"] == "M" and status["knowledge/perf/01-b.md"] == "D"
    assert status["knowledge/perf/02-c.md"] == "A"
    assert "Knowledge files removed (1):\n- knowledge/perf/01-b.md" in run_git(ws.root, "log", "-1", "--format=%B")
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""


def test_staged_work_outside_kb_paths_stays_staged_in_a_repo_with_no_commits_yet(tmp_path):
    ws = make_workspace(tmp_path)
    (ws.root / "notes.txt").write_text("mine\n")
    run_git(ws.root, "add", "notes.txt")
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    assert consolidate(ws).commit is not None
    assert "notes.txt" not in committed_paths(ws.root)
    assert run_git(ws.root, "status", "--porcelain", "--", "notes.txt") == "A  notes.txt\n"


def test_a_staged_deletion_outside_kb_paths_is_neither_committed_nor_lost(tmp_path):
    ws = make_workspace(tmp_path)
    (ws.root / "notes.txt").write_text("v1\n")
    run_git(ws.root, "add", "notes.txt")
    run_git(ws.root, "commit", "-q", "-m", "base")
    run_git(ws.root, "rm", "-q", "--cached", "notes.txt")  # staged: delete it from git, keep the file
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    assert consolidate(ws).commit is not None
    assert run_git(ws.root, "ls-tree", "--name-only", "HEAD", "notes.txt") == "notes.txt\n"
    assert sorted(run_git(ws.root, "status", "--porcelain", "--", "notes.txt").splitlines()) == ["?? notes.txt", "D  notes.txt"]


def test_a_commit_a_hook_refuses_is_made_by_the_next_run(tmp_path):
    import pytest

    from kb.errors import KbError

    ws = make_workspace(tmp_path)
    hook = ws.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'not today' >&2\nexit 1\n")
    hook.chmod(0o755)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    with pytest.raises(KbError, match="not today"):
        consolidate(ws)
    assert commits(ws.root) == []
    hook.unlink()
    later = consolidate(ws)  # the drop is stamped already; what was pending is committed now
    assert later.drops == [] and later.commit is not None and "1 drop" in later.commit["summary"]
    assert "perf/00-a.md" in run_git(ws.root, "show", "--name-only", "--format=", "HEAD")
    assert consolidate(ws).commit is None
