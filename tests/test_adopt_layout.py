"""A layout in kb.toml, and `kb init --adopt DIR` writing it for an existing tree in place."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import run_kb
from kb.config import Config
from kb.errors import ConfigError
from kb.workspace import open_workspace


def original_tree(root):
    """A skill folder of the original shape: topic folders at its root, _ingest-auto/ plans with drops beside them."""
    for topic in ("perf", "cuda"):
        (root / topic).mkdir(parents=True)
        for i in range(3):
            (root / topic / f"{i:02d}-{topic}.md").write_text(f"# {topic} {i}\n\n## Overview\n\nText.\n")
    done = root / "_ingest-auto" / "completed" / "expansion-perf-2025-01-31"
    doing = root / "_ingest-auto" / "inprocess" / "expansion-cuda-2025-02-01"
    for folder in (done, doing):
        folder.mkdir(parents=True)
        (folder / "ingestion.md").write_text("# Knowledge Expansion: x (1 runners in 1 batches)\n\n# BATCH 1: a\n\n"
                                             "- [✓] PART 1: Create perf/00-perf.md (Completed 2025-01-31 16:45)\n")
    (done / "KNOWLEDGE-DROP-perf-2025-01-31-1645.md").write_text("# KNOWLEDGE DROP: p\n\n**Date**: 2025-01-31\n**File**: perf/00-perf.md\n")
    (root / "SKILL.md").write_text("---\nname: my-skill\ndescription: Mine.\n---\n\n# My skill\n")
    (root / "README.md").write_text("# readme\n")
    return root


def test_the_default_layout_is_todays():
    layout = Config().layout
    assert (layout.knowledge, layout.drops, layout.plans, layout.completed) == (
        "knowledge", ["drops/KNOWLEDGE-DROP-*.md"], ["plans/*.md"], ["plans/completed/*.md"])


def test_a_layout_outside_the_workspace_is_refused(tmp_path):
    (tmp_path / "kb.toml").write_text('[layout]\nknowledge = "../elsewhere"\n')
    with pytest.raises(ConfigError, match="layout"):
        open_workspace(tmp_path)


def test_adopt_writes_only_kb_toml_and_says_what_it_found(tmp_path):
    root = original_tree(tmp_path / "skill")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    done = run_kb("init", "--adopt", str(root), "--json", cwd=tmp_path)
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert data["layout"] == {"knowledge": ".", "drops": ["_ingest-auto/**/KNOWLEDGE-DROP-*.md"],
                              "plans": ["_ingest-auto/inprocess/*/ingestion.md"],
                              "completed": ["_ingest-auto/completed/*/ingestion.md"]}
    assert data["found"] == {"knowledge_files": 6, "drops": 1, "plans": 1, "completed_plans": 1, "skill_md": True}
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    assert {p.name for p in set(after) - set(before)} == {"kb.toml"} and all(after[p] == h for p, h in before.items())
    ws = open_workspace(root)
    assert ws.knowledge_prefix == "" and ws.knowledge_dir == ws.root
    assert ws.layout_files("completed") == ["_ingest-auto/completed/expansion-perf-2025-01-31/ingestion.md"]
    again = run_kb("init", "--adopt", str(root), cwd=tmp_path)
    assert again.code != 0 and "already a kb workspace" in again.err


def test_adopt_prints_what_it_found(tmp_path):
    root = original_tree(tmp_path / "skill")
    out = run_kb("init", "--adopt", str(root), cwd=tmp_path).out
    assert "knowledge root: the tree itself" in out and "6 Markdown files" in out and "no other file" in out


def adopted_tree(tmp_path, drops=20):
    """original_tree plus ``drops`` bold-key drops beside the completed plan, in the shapes of
    test_adopt_drops, naming files relative to the skill folder; a git repository with it committed."""
    from test_adopt_drops import DROP_SHAPES
    from test_consolidate_support import git_init, run_git

    root = original_tree(tmp_path / "skill")
    done = root / "_ingest-auto" / "completed" / "expansion-perf-2025-01-31"
    for i in range(drops):
        rel = f"perf/{i:02d}-more.md"
        (root / rel).write_text(f"# More {i}\n\n## Overview\n\nText {i}.\n\n## Sources\n\n- [a](https://example.org/{i})\n")
        line, target, when_line, _ = DROP_SHAPES[i % (len(DROP_SHAPES) - 1)]
        line = line.replace(target, rel).replace("knowledge/" + rel, rel)
        (done / f"KNOWLEDGE-DROP-more{i}-2025-01-31-1645.md").write_text(
            f"# KNOWLEDGE DROP: More {i}\n\n{when_line}\n**Part**: {i + 1}\n{line}\n**Status**: COMPLETE ✓\n")
    git_init(root)
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "the tree as the person grew it")
    return root


def _snapshot(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and ".git" not in p.parts and ".kb" not in p.parts}


def test_adopt_then_a_dry_look_then_a_commit_on_a_tree_of_the_original_shape(tmp_path):
    import re

    from test_consolidate_support import run_git

    root = adopted_tree(tmp_path)
    assert run_kb("init", "--adopt", str(root), cwd=tmp_path).code == 0
    before = _snapshot(root)
    dry = run_kb("consolidate", "--no-commit", "--json", cwd=root)
    assert dry.code == 0, dry.err
    data = json.loads(dry.out)
    after = _snapshot(root)
    touched = {rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel)}
    assert touched == set()  # a dry look changes no file, byte for byte
    assert run_git(root, "status", "--porcelain", "--untracked-files=all", "--", ".", ":!.kb") == "?? kb.toml\n"
    linked = [d for d in data["drops"] if d["knowledge_file"] and (root / d["knowledge_file"]).is_file()]
    assert len(data["drops"]) == 21 and len(linked) / len(data["drops"]) >= 0.95
    assert data["totals"]["files"] == 26 and data["totals"]["topics"] == 2
    assert data["previews"] == {"INDEX.md": ".kb/consolidate/preview/INDEX.md", "SKILL.md": ".kb/consolidate/preview/SKILL.md"}
    skill = (root / data["previews"]["SKILL.md"]).read_text()
    assert skill.startswith("---\nname: my-skill\ndescription: Mine.\n---\n")
    index = (root / data["previews"]["INDEX.md"]).read_text()
    assert "](perf/00-more.md)" in index and "KNOWLEDGE-DROP" not in index and "README" not in index
    assert "from [ingestion](_ingest-auto/completed/expansion-perf-2025-01-31/ingestion.md) PART 1" in index  # the drop's plan

    run_git(root, "add", "kb.toml")
    run_git(root, "commit", "-q", "-m", "adopt")
    done = run_kb("consolidate", cwd=root)
    assert "Consolidated 21 drops" in done.out  # the dry look remembered nothing
    assert done.code == 0, done.err
    changed = run_git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert changed and all(p.startswith(("_ingest-auto/", "INDEX.md", "SKILL.md")) for p in changed), changed
    assert "README.md" not in changed and "kb.toml" not in changed
    assert (root / "SKILL.md").read_text().startswith("---\nname: my-skill\ndescription: Mine.\n---\n")
    assert (root / "_ingest-auto" / "completed" / "expansion-perf-2025-01-31" / "ingestion.md").is_file()  # not moved
    said = re.search(r"(\d+) sources", done.out).group(1)
    report = json.loads(run_kb("report", "--json", cwd=root).out)
    assert report["totals"]["files"] == 26 and sum(report["totals"]["sources"].values()) == int(said)
    assert f"· {said} sources ·" in (root / "INDEX.md").read_text()
    stdout = re.search(r"Consolidated (\d+) drops: (\d+) files added, (\d+) changed", done.out).groups()
    summary = re.search(r"(\d+) drops, (\d+) files added, (\d+) changed", run_git(root, "log", "-1", "--format=%s")).groups()
    assert stdout == summary and stdout[0] == "21"
    assert report["totals"]["drops"] == {"total": 21, "consolidated": 21, "not_consolidated": 0, "failed": 0,
                                         "without_file": 0, "unreadable": 0}, report["totals"]["drops"]
    assert run_git(root, "status", "--porcelain", "--", ".", ":!.kb") == ""  # every file kb wrote is committed


def test_a_drop_beside_its_plan_belongs_to_that_plan(tmp_path):
    from kb.consolidate import consolidate

    root = adopted_tree(tmp_path, drops=3)
    run_kb("init", "--adopt", str(root), cwd=tmp_path)
    result = consolidate(open_workspace(root), commit=False)
    plan = "_ingest-auto/completed/expansion-perf-2025-01-31/ingestion.md"
    assert {d.plan for d in result.drops} == {plan}
    assert [p.path for p in result.plans] == [plan] and result.plans[0].drops == 4
