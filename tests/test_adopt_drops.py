"""Adopting an existing tree: its drops read as a person reads them, a dry look that changes
no drop or knowledge file, and the person's SKILL.md kept. Fixtures are written here in the
shapes of the original trees (bold keys, decorated values, many date forms), not copied."""

from __future__ import annotations

import hashlib
import json

import pytest

from kb import drop_keys
from kb.consolidate import consolidate
from kb.consolidate.scan import knowledge_ref
from kb.records import read_drop
from test_consolidate_support import commits, run_git, make_workspace
from conftest import run_kb

# (bold-key lines, the knowledge file they name, the creation time they give)
DROP_SHAPES = [
    ("**Target File**: `topic/00-a.md`", "topic/00-a.md", "**Created**: 2025-01-31 16:45", "2025-01-31T16:45"),
    ("**File**: topic/01-b.md", "topic/01-b.md", "**Date**: 2025-01-31", "2025-01-31"),
    ("**File Created**: `topic/02-c.md` (740 lines)", "topic/02-c.md", "**Timestamp**: 2025-01-31T16:45:10Z", "2025-01-31T16:45:10Z"),
    ("**Target**: [topic/03-d.md](topic/03-d.md)", "topic/03-d.md", "**Date**: January 31, 2025", "2025-01-31"),
    ("**Target File**: knowledge/topic/04-e.md", "topic/04-e.md", "**Created**: 2025-01-31 16:45 UTC", "2025-01-31T16:45Z"),
    ("**File Created**: topic/05-f.md (new file, ~500 lines)", "topic/05-f.md", "**Timestamp**: 2025-02-01 09:05:00", "2025-02-01T09:05:00"),
    ("**Target**: `knowledge/topic/06-g.md`", "topic/06-g.md", "**Date**: 2025/02/01", "2025-02-01"),
    ("- **File**: [Six](../topic/07-h.md)", None, "**Created**: 31 January 2025", "2025-01-31"),
]


@pytest.mark.parametrize("line, _target, when_line, when", DROP_SHAPES)
def test_every_key_and_date_shape_is_read(line, _target, when_line, when):
    keys = drop_keys.bold_keys(f"# KNOWLEDGE DROP: X\n\n{when_line}\n{line}\n**Status**: COMPLETE ✓\n")
    assert drop_keys.created(keys) == when
    assert drop_keys.target(keys) is not None and drop_keys.target(keys).endswith(".md")
    assert "`" not in drop_keys.target(keys) and "(" not in drop_keys.target(keys)


def test_a_value_that_names_no_file_or_no_date_gives_none():
    assert drop_keys.clean_path("None") is None and drop_keys.clean_path("see above") is None
    assert drop_keys.parse_when("sometime last week") is None and drop_keys.parse_when("") is None
    assert drop_keys.created_from_name("KNOWLEDGE-DROP-x-2025-01-31-1645.md") == "2025-01-31T16:45"


def test_a_target_is_linked_relative_to_the_knowledge_root_or_the_skill_folder():
    files = {"knowledge/t/one.md"}
    exists = files.__contains__
    for value in ("`t/one.md` (740 lines)", "knowledge/t/one.md", "ws/t/one.md", "[one](t/one.md)"):
        assert knowledge_ref(value, "knowledge", exists, "ws") == "knowledge/t/one.md", value
    # A tree whose topic folders sit at its root: the knowledge root is the skill folder.
    assert knowledge_ref("`t/one.md`", ".", {"t/one.md"}.__contains__) == "t/one.md"


def _tree(tmp_path, git=True):
    """A workspace holding 20 older drops in the shapes above and the files they name."""
    from test_consolidate_support import add_knowledge

    ws = make_workspace(tmp_path, git=git)
    for i in range(20):
        line, _, when_line, _ = DROP_SHAPES[i % (len(DROP_SHAPES) - 1)]
        rel = f"topic/{i:02d}-f{i}.md"
        add_knowledge(ws, rel, f"File {i}", i)
        line = line.split(":", 1)[0] + ":" + line.split(":", 1)[1].replace(line.split("topic/")[1].split(".md")[0], f"{i:02d}-f{i}")
        (ws.drops_dir / f"KNOWLEDGE-DROP-f{i}.md").write_text(
            f"# KNOWLEDGE DROP: File {i}\n\n{when_line}\n**Part**: {i + 1}\n{line}\n**Status**: COMPLETE ✓\n\n"
            "## What Was Created\n\nA file.\n\n## Sources Cited\n\n- somewhere\n")
    ws.skill_path.write_text("---\nname: my-skill\ndescription: Everything I know about topic, by me.\nlicense: MIT\n---\n\n# My skill\n\nHand-written.\n")
    return ws


def _hashes(root, folders=("drops", "knowledge")):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((root / folder).rglob("*.md"))}


def test_a_dry_look_links_every_drop_and_changes_no_drop_or_knowledge_file(tmp_path):
    ws = _tree(tmp_path)
    before = _hashes(ws.root)
    result = consolidate(ws, commit=False)
    assert _hashes(ws.root) == before
    linked = [d for d in result.drops if d.knowledge_file and (ws.root / d.knowledge_file).is_file()]
    assert len(result.drops) == 20 and len(linked) / len(result.drops) >= 0.95
    assert "Everything I know about topic, by me." in ws.skill_path.read_text()


def test_consolidate_commits_stamps_that_keep_the_bold_keys_and_the_persons_description(tmp_path):
    ws = _tree(tmp_path)
    run_git(ws.root, "add", "-A")
    run_git(ws.root, "commit", "-q", "-m", "the tree as it was")
    result = consolidate(ws)
    assert result.commit is not None and len(commits(ws.root)) == 2
    changed = run_git(ws.root, "show", "--name-only", "--format=", "HEAD").split()
    assert changed and all(p.startswith(("drops/", "INDEX.md", "SKILL.md")) for p in changed)
    for path in ws.drops_dir.glob("KNOWLEDGE-DROP-f*.md"):
        text = path.read_text()
        assert "**Status**: COMPLETE ✓" in text and "## What Was Created\n\nA file.\n" in text  # the body as written
        assert read_drop(path).knowledge_file.startswith("topic/") or read_drop(path).knowledge_file.startswith("knowledge/")
    skill = ws.skill_path.read_text()
    assert skill.startswith("---\nname: my-skill\ndescription: Everything I know about topic, by me.\nlicense: MIT\n---\n")
    assert "Hand-written." in skill


def test_a_drop_kb_cannot_read_with_confidence_is_never_stamped(tmp_path):
    ws = make_workspace(tmp_path)
    vague = ws.drops_dir / "KNOWLEDGE-DROP-vague.md"
    vague.write_text("# KNOWLEDGE DROP: Vague\n\n**Target File**: topic/missing.md\n**Status**: COMPLETE ✓\n")
    before = vague.read_bytes()
    consolidate(ws)
    assert vague.read_bytes() == before  # no file behind the target, no date: left as written


def test_a_stamp_an_older_kb_wrote_from_a_misread_hides_nothing(tmp_path):
    path = tmp_path / "KNOWLEDGE-DROP-x.md"
    path.write_text("---\nknowledge_file: null\ncreated: ''\nconsolidated: '2025-03-01T00:00:00Z'\n---\n\n"
                    "# KNOWLEDGE DROP: X\n\n**Date**: 2025-01-31\n**File Created**: `t/one.md` (740 lines)\n")
    drop = read_drop(path)
    assert (drop.knowledge_file, drop.created, drop.title) == ("t/one.md", "2025-01-31", "X")
    assert drop.consolidated == "2025-03-01T00:00:00Z"


def test_cli_no_commit_json_agrees_with_stdout_on_drops(tmp_path):
    ws = _tree(tmp_path / "a", git=False)
    data = json.loads(run_kb("consolidate", "--no-commit", "--json", cwd=ws.root).out)
    assert len(data["drops"]) == 20 and data["dry_run"] is True
    other = _tree(tmp_path / "b", git=False)
    out = run_kb("consolidate", "--no-commit", cwd=other.root).out
    assert "Would consolidate 20 drops" in out and "no file was written" in out
    out = run_kb("consolidate", "--write-only", cwd=other.root).out
    assert "Consolidated 20 drops" in out  # the dry look remembered nothing


def test_a_dry_look_then_a_commit_stamps_the_drops_once(tmp_path):
    ws = _tree(tmp_path)
    run_git(ws.root, "add", "-A")
    run_git(ws.root, "commit", "-q", "-m", "the tree as it was")
    before = _hashes(ws.root, ("drops",))
    dry = consolidate(ws, commit=False)
    assert len(dry.drops) == 20 and _hashes(ws.root, ("drops",)) == before
    (ws.knowledge_dir / "topic" / "00-f0.md").write_text("# Edited by hand\n")  # a rerun that reads again
    assert consolidate(ws, commit=False).drops == []  # remembered, not re-reported
    done = consolidate(ws)
    assert done.commit is not None and "20 drops" in done.commit["summary"]
    assert all(read_drop(p).consolidated for p in ws.drops_dir.glob("KNOWLEDGE-DROP-f*.md"))
    assert consolidate(ws).commit is None
