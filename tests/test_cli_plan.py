"""`kb plan show|reset` and `kb init` through the real CLI."""

from __future__ import annotations

import json

from conftest import SEED


def test_plan_show_json_on_the_seed(kb_cli, seed_bytes):
    result = kb_cli("plan", "show", str(SEED), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) >= {"title", "metadata", "batches", "problems", "repairs"}
    assert len(data["batches"]) == 4
    parts = [p for b in data["batches"] for p in b["parts"]]
    assert len(parts) == 16
    assert all(p["status"] == "done" and p["completed_at"] for p in parts)
    assert parts[0]["completed_at"] == "2025-11-16 14:38"
    assert all(len(p["sections"]) == 8 for p in parts)
    assert len(parts[0]["reads"]) == 3 and len(parts[0]["searches"]) == 4
    assert set(parts[0]) >= {"number", "title", "target", "status", "completed_at", "reads", "influenced_by",
                             "searches", "sections", "cite", "drop", "line"}
    assert set(parts[0]["sections"][0]) >= {"number", "title", "details"}
    assert any("mojibake" in r for r in data["repairs"])


def test_plan_show_table_lists_parts_and_problems(kb_cli, tmp_path):
    plan = tmp_path / "p.md"
    plan.write_text("# Knowledge Expansion: T (1 runners in 2 batches)\n\n# BATCH 1: A\n\n## PART 1: X\n- [ ] PART 1: Create ../../x.md\n\n# BATCH 2: Empty\n")
    result = kb_cli("plan", "show", str(plan), cwd=tmp_path)
    assert result.code == 0
    assert "../../x.md" in result.out
    assert f"{plan.name}:6: PART 1: target '../../x.md' escapes its folder" in result.out.replace(str(plan), plan.name)
    assert "BATCH 2 has no parts" in result.out


def test_plan_errors_are_one_line_and_exit_2(kb_cli, tmp_path):
    missing = kb_cli("plan", "show", str(tmp_path / "nope.md"), cwd=tmp_path)
    assert missing.code == 2
    assert missing.err.strip().count("\n") == 0 and "no such plan file" in missing.err
    assert "Traceback" not in missing.err
    junk = tmp_path / "junk.md"
    junk.write_text("hello\n")
    result = kb_cli("plan", "show", str(junk), cwd=tmp_path)
    assert result.code == 2 and "not an expansion plan" in result.err


def test_plan_reset_one_part_and_batch(kb_cli, tmp_path, seed_bytes):
    plan = tmp_path / "seed.md"
    plan.write_bytes(seed_bytes)
    one = kb_cli("plan", "reset", str(plan), "--part", "5", "--json", cwd=tmp_path)
    assert one.code == 0, one.err
    assert json.loads(one.out)["reset"] == [5]
    batch = kb_cli("plan", "reset", str(plan), "--batch", "2", "--json", cwd=tmp_path)
    assert json.loads(batch.out)["reset"] == [6, 7, 8]
    shown = json.loads(kb_cli("plan", "show", str(plan), "--json", cwd=tmp_path).out)
    status = {p["number"]: p["status"] for b in shown["batches"] for p in b["parts"]}
    assert [n for n, s in status.items() if s == "pending"] == [5, 6, 7, 8]
    assert shown["repairs"] == []  # written back repaired by the first reset
    bad = kb_cli("plan", "reset", str(plan), "--part", "99", cwd=tmp_path)
    assert bad.code == 2 and "no PART 99" in bad.err


def test_init_creates_a_workspace_and_refuses_to_clobber(kb_cli, tmp_path):
    target = tmp_path / "ws"
    result = kb_cli("init", str(target), "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    for rel in ("kb.toml", "knowledge", "plans/completed", "drops", "runners", "validators", "snippets",
                "INDEX.md", "SKILL.md", ".gitignore"):
        assert (target / rel).exists(), rel
    assert ".kb/" in (target / ".gitignore").read_text()
    (target / "kb.toml").write_text("[run]\nrunners = 2\n")
    again = kb_cli("init", str(target), cwd=tmp_path)
    assert again.code == 2 and "already a kb workspace" in again.err
    assert (target / "kb.toml").read_text() == "[run]\nrunners = 2\n"


def test_bad_config_is_a_clear_error(kb_cli, tmp_path):
    kb_cli("init", str(tmp_path / "ws"), cwd=tmp_path)
    (tmp_path / "ws" / "kb.toml").write_text("[run]\nrunerz = 3\n")
    plan = tmp_path / "ws" / "plans" / "p.md"
    plan.write_text("# Knowledge Expansion: T (1 runners in 1 batches)\n\n# BATCH 1: A\n\n## PART 1: X\n- [ ] PART 1: Create a/00-x.md\n")
    result = kb_cli("plan", "reset", "plans/p.md", cwd=tmp_path / "ws")
    assert result.code == 2
    assert "kb.toml: run.runerz: Extra inputs are not permitted" in result.err


def test_init_with_a_plan_copies_it_pending_and_run_plan_finds_its_workspace(kb_cli, tmp_path):
    target = tmp_path / "demo"
    result = kb_cli("init", str(target), "--plan", str(SEED), "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    created = json.loads(result.out)
    assert created["plans"][0]["plan"] == "plans/seed-002-performance-plan.txt"
    assert created["plans"][0]["reset"] == list(range(1, 17))  # the seed arrives with every PART ticked
    assert created["git_init"] is True and (target / ".git").is_dir()
    shown = json.loads(kb_cli("plan", "show", str(target / "plans/seed-002-performance-plan.txt"), "--json",
                              cwd=tmp_path).out)
    assert {p["status"] for b in shown["batches"] for p in b["parts"]} == {"pending"}
    assert shown["repairs"] == []  # copied, then written back repaired by the reset
    # From outside the workspace, the plan's own workspace is used, not the cwd's (there is none here).
    dry = kb_cli("run-plan", str(target / "plans/seed-002-performance-plan.txt"), "--batch", "2", "--dry-run", "--json",
                 cwd=tmp_path)
    assert dry.code == 0, dry.err
    assert [p["part"] for p in json.loads(dry.out)["units"][0]["parts"]] == [5, 6, 7, 8]


def test_init_refuses_a_missing_plan_before_creating_anything(kb_cli, tmp_path):
    result = kb_cli("init", str(tmp_path / "demo"), "--plan", str(tmp_path / "nope.md"), cwd=tmp_path)
    assert result.code == 2 and "no plan file" in result.err
    assert not (tmp_path / "demo").exists()


def _git(root, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


GIT_ID = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
          "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org"}


def test_init_commits_the_new_workspace(kb_cli, tmp_path):
    target = tmp_path / "demo"
    result = kb_cli("init", str(target), "--plan", str(SEED), "--json", cwd=tmp_path, env=GIT_ID)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["git_init"] is True and doc["commit"]
    assert _git(target, "log", "--format=%s").splitlines() == ["kb init: a new kb workspace"]
    assert _git(target, "status", "--porcelain") == ""
    tracked = _git(target, "ls-files").splitlines()
    for rel in ("kb.toml", ".gitignore", "INDEX.md", "SKILL.md", "plans/seed-002-performance-plan.txt"):
        assert rel in tracked, rel
    assert any(t.startswith("runners/") for t in tracked) and any(t.startswith("validators/") for t in tracked)
    bare = kb_cli("init", str(tmp_path / "nogit"), "--no-git", "--json", cwd=tmp_path)
    assert bare.code == 0 and json.loads(bare.out)["commit"] is None and not (tmp_path / "nogit" / ".git").exists()


def test_init_rerun_with_the_same_plan_says_so_and_exits_0(kb_cli, tmp_path):
    target = tmp_path / "demo"
    assert kb_cli("init", str(target), "--plan", str(SEED), cwd=tmp_path).code == 0
    plan = target / "plans" / "seed-002-performance-plan.txt"
    kb_cli("plan", "reset", str(plan), cwd=tmp_path)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file() and ".git" not in p.parts}
    again = kb_cli("init", str(target), "--plan", str(SEED), cwd=tmp_path)
    assert again.code == 0, again.err
    assert "already a kb workspace with plans/seed-002-performance-plan.txt from the same plan; nothing changed" in again.out
    after = {p: p.read_bytes() for p in target.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before
    other = tmp_path / "other.md"
    other.write_text("# Knowledge Expansion: O\n\n# BATCH 1: B\n\n## PART 1: X\n- [ ] PART 1: Create o/x.md\n")
    different = kb_cli("init", str(target), "--plan", str(other), cwd=tmp_path)
    assert different.code == 2 and "already a kb workspace" in different.err


def test_a_5000_digit_part_number_is_a_problem_not_a_traceback(kb_cli, tmp_path):
    from kb.workspace import init_workspace

    workspace, _ = init_workspace(tmp_path / "ws")
    huge = "4" * 5000
    plan = workspace.plans_dir / "huge.md"
    plan.write_text(f"# Knowledge Expansion: H\n\n# BATCH 1: B\n\n## PART {huge}: H\n- [ ] PART {huge}: Create t/h.md\n\n"
                    "## PART 1: One\n- [✓] PART 1: Create t/one.md (Completed 2025-01-01 01:01)\n", encoding="utf-8")
    shown = kb_cli("plan", "show", "plans/huge.md", cwd=workspace.root)
    assert shown.code == 0 and "Traceback" not in shown.err, shown.err
    assert "huge.md:5: a PART number of 5000 digits" in shown.out
    reset = kb_cli("plan", "reset", "plans/huge.md", "--json", cwd=workspace.root)
    assert reset.code == 0, reset.err
    assert json.loads(reset.out)["reset"] == [1]
    dry = kb_cli("run-plan", "plans/huge.md", "--batch", "1", "--dry-run", cwd=workspace.root)
    assert dry.code == 0 and "Traceback" not in dry.err, dry.err


def test_plan_show_names_a_lettered_batch_as_the_plan_does(kb_cli, tmp_path):
    plan = tmp_path / "p.md"
    plan.write_text("# Knowledge Expansion: T\n\n# BATCH 1: A\n\n## PART 1: X\n- [ ] PART 1: Create t/x.md\n\n"
                    "# BATCH 1b: Added\n\n## PART 2: Y\n- [ ] PART 2: Create t/y.md\n", encoding="utf-8")
    shown = kb_cli("plan", "show", str(plan), cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert "BATCH 1b: Added (--batch 2)" in shown.out
