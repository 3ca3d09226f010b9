"""The issue's scenario through the real CLI: BATCH 2 of the performance plan is done,
`kb consolidate` indexes its four files, commits once, and a rerun commits nothing."""

from __future__ import annotations

import json

import yaml

from conftest import install_performance_plan, run_kb
from kb.consolidate.render import split_front_matter
from kb.plan import load_plan
from kb.plan.edit import set_part_status
from test_consolidate_support import add_part, assert_links_resolve, commits, make_workspace, run_git

def test_batch_two_of_the_performance_plan_consolidates_into_one_commit(tmp_path):
    ws = make_workspace(tmp_path)
    install_performance_plan(ws.root / "plans" / "performance.md")
    run_git(ws.root, "add", "-A")
    run_git(ws.root, "commit", "-q", "-m", "workspace")
    plan = load_plan(ws.root / "plans" / "performance.md", "plans/performance.md")
    batch = plan.batch(2)
    # What `kb run-plan plans/performance.md --batch 2` leaves: four files, four drops, four ticks.
    for i, part in enumerate(batch.parts):
        add_part(ws, part.target, part.title, i, plan="plans/performance.md", part=part.number, batch=2)
    set_part_status(ws.root / "plans" / "performance.md", {p.number: "done" for p in batch.parts})
    (ws.root / "scratch.txt").write_text("not kb's\n")

    first = run_kb("consolidate", "--json", cwd=ws.root)
    assert first.code == 0, first.err
    data = json.loads(first.out)
    targets = sorted(f"knowledge/{p.target}" for p in batch.parts)
    assert sorted(data["knowledge"]["added"]) == targets and len(targets) == 4
    assert data["plans"][0]["path"] == "plans/performance.md"
    assert data["plans"][0]["batches"] == [2] and data["plans"][0]["parts"] == [p.number for p in batch.parts]
    assert data["plans"][0]["moved_to"] is None  # batches 1, 3, 4 are still to run
    assert data["commit"]["sha"] and len(commits(ws.root)) == 2
    kinds = {w["kind"] for w in data["warnings"]}
    assert "dangling-cite" in kinds and "missing-read" in kinds  # the plan reads files this tree lacks

    index = (ws.root / "INDEX.md").read_text()
    links = assert_links_resolve(ws.root, index)
    assert all(t in links for t in targets)
    fm, _ = split_front_matter((ws.root / "SKILL.md").read_text())
    meta = yaml.safe_load(fm)
    assert len(meta["name"]) <= 64 and meta["name"] == meta["name"].lower()
    assert 0 < len(meta["description"]) <= 1024 and "performance" in meta["description"]
    touched = run_git(ws.root, "show", "--name-only", "--format=", "HEAD").split()
    assert set(p.split("/")[0] for p in touched) <= {"knowledge", "drops", "plans", "INDEX.md", "SKILL.md", "snippets"}
    assert "plans/performance.md" in touched and "scratch.txt" not in touched

    second = run_kb("consolidate", cwd=ws.root)
    assert second.code == 0 and "Nothing to consolidate" in second.out
    assert len(commits(ws.root)) == 2


def test_cli_prints_what_it_did_and_warnings_on_stderr(tmp_path):
    ws = make_workspace(tmp_path)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    (ws.knowledge_dir / "perf" / "01-orphan.md").write_text("# Orphan\n\nText.\n")
    result = run_kb("consolidate", cwd=ws.root)
    assert result.code == 0, result.err
    assert "Consolidated 1 drop: 1 file added, 0 changed." in result.out
    assert "INDEX.md updated: 2 files in 1 topic" in result.out
    assert "Committed " in result.out
    assert "unaccounted-file (1)" in result.err and "knowledge/perf/01-orphan.md" in result.err
    help_text = run_kb("consolidate", "--help").out
    assert "--no-commit" in help_text and "--json" in help_text and "--workspace" in help_text
