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
