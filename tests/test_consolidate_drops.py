"""Drops: stamped once, older bold-key drops understood, and a no-op rerun reads no bodies."""

from __future__ import annotations

import os

from kb.consolidate import consolidate
from kb.records import read_drop
from test_consolidate_support import add_drop, add_knowledge, add_part, make_workspace


def test_each_consolidated_drop_records_when_and_the_rest_stays_byte_identical(tmp_path):
    ws = make_workspace(tmp_path)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    drop = next(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    before = drop.read_text()
    result = consolidate(ws, now="2025-11-20T10:00:00Z")
    assert [d.path for d in result.drops] == [f"drops/{drop.name}"]
    after = drop.read_text()
    assert read_drop(drop).consolidated == "2025-11-20T10:00:00Z"
    assert after == before.replace("consolidated: null", "consolidated: '2025-11-20T10:00:00Z'")
    # The next run skips it.
    assert consolidate(ws).drops == []


def test_older_bold_key_drops_are_read_and_gain_front_matter(tmp_path):
    ws = make_workspace(tmp_path)
    add_knowledge(ws, "perf/00-old.md", "Old", 1)
    old = ws.drops_dir / "KNOWLEDGE-DROP-old-2025-01-30-1200.md"
    old.write_text("# KNOWLEDGE DROP: Old file\n\n**Created**: 2025-01-30 12:00\n**Part**: 7\n"
                   "**Target File**: `perf/00-old.md` (700 lines)\n**Status**: COMPLETE ✓\n\n## What Was Created\n\nStuff.\n")
    result = consolidate(ws, now="2025-11-20T10:00:00Z")
    assert [(d.part, d.knowledge_file, d.change) for d in result.drops] == [(7, "knowledge/perf/00-old.md", "added")]
    assert not [w for w in result.warnings if w.kind in ("unaccounted-file", "missing-knowledge-file")]
    text = old.read_text()
    assert text.startswith("---\n") and "## What Was Created\n\nStuff.\n" in text
    assert read_drop(old).consolidated == "2025-11-20T10:00:00Z" and read_drop(old).part == 7


def test_a_no_op_rerun_reads_no_file_bodies(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path)
    for i in range(5):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    consolidate(ws)
    import kb.consolidate.scan as scan

    def boom(*_args, **_kwargs):
        raise AssertionError("a no-op rerun read a file body")

    monkeypatch.setattr(scan, "read_knowledge_parts", boom)
    monkeypatch.setattr(scan, "read_drop_file", boom)
    assert consolidate(ws).nothing_to_consolidate
    # A changed knowledge file is re-read (and only that one), and INDEX.md follows it.
    monkeypatch.undo()
    seen = []
    original = scan.read_knowledge_parts
    monkeypatch.setattr(scan, "read_knowledge_parts", lambda root, rel, options: seen.append(rel) or original(root, rel, options))
    add_knowledge(ws, "perf/02-x.md", "Renamed title", 2, plan="plans/p.md", part=3)
    result = consolidate(ws)
    assert seen == ["knowledge/perf/02-x.md"]
    assert result.index_changed and not result.drops and "Renamed title" in ws.index_path.read_text()


def test_an_edit_with_the_same_size_and_mtime_is_still_seen(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    path = add_knowledge(ws, "perf/00-a.md", "Alpha", 1)
    add_drop(ws, "perf/00-a.md", "Alpha", plan="plans/p.md", part=1)
    consolidate(ws, commit=False)
    stat = path.stat()
    add_knowledge(ws, "perf/00-a.md", "Omega", 1)  # same length title, atomic rewrite
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    consolidate(ws, commit=False)
    assert "[Omega]" in ws.index_path.read_text()


def test_many_drops_are_stamped_in_one_batch_and_leave_no_temporary_files(tmp_path):
    ws = make_workspace(tmp_path)
    for i in range(12):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    result = consolidate(ws, now="2025-11-20T10:00:00Z")
    assert len(result.drops) == 12
    assert all(read_drop(p).consolidated == "2025-11-20T10:00:00Z" for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    assert not [p.name for p in ws.drops_dir.iterdir() if p.name.endswith(".tmp")]


def test_a_file_edited_while_consolidating_is_seen_by_the_next_run(tmp_path, monkeypatch):
    import kb.consolidate.engine as engine

    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    original = engine._stamp_drops

    def stamp_and_edit(root, drops, when, prepared):
        journaled = original(root, drops, when, prepared)
        add_knowledge(ws, "perf/00-a.md", "Alpha edited meanwhile", 1, plan="plans/p.md", part=1)
        return journaled

    monkeypatch.setattr(engine, "_stamp_drops", stamp_and_edit)
    consolidate(ws, commit=False)
    monkeypatch.undo()
    assert "Alpha edited meanwhile" not in ws.index_path.read_text()
    again = consolidate(ws, commit=False)
    assert not again.nothing_to_consolidate and "Alpha edited meanwhile" in ws.index_path.read_text()


def test_consolidate_refuses_while_another_kb_process_writes(tmp_path):
    import pytest

    from kb.errors import LockedError
    from kb.runner.lock import workspace_lock

    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    with workspace_lock(ws, "kb run-plan"):
        with pytest.raises(LockedError, match="kb run-plan"):
            consolidate(ws, commit=False)
    assert consolidate(ws, commit=False).drops  # and works once the lock is free


def test_a_drop_that_lands_while_consolidating_is_consolidated_by_the_next_run(tmp_path, monkeypatch):
    import kb.consolidate.engine as engine

    ws = make_workspace(tmp_path)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    original = engine._stamp_drops

    def stamp_while_a_runner_finishes(root, drops, when, prepared):
        journaled = original(root, drops, when, prepared)
        add_part(ws, "perf/01-b.md", "Beta", 2, plan="plans/p.md", part=2)  # another process's PART lands now
        return journaled

    monkeypatch.setattr(engine, "_stamp_drops", stamp_while_a_runner_finishes)
    first = consolidate(ws)
    monkeypatch.undo()
    assert [d.part for d in first.drops] == [1]
    again = consolidate(ws)
    assert not again.nothing_to_consolidate and [d.part for d in again.drops] == [2]
    assert "Beta" in ws.index_path.read_text()
    assert consolidate(ws).nothing_to_consolidate


def test_a_first_run_that_cannot_read_a_file_still_leaves_a_no_op_rerun(tmp_path, monkeypatch):
    # The first run lists files by name only and takes each stat from its read (see Listing):
    # the one file no read could stat is stat'ed apart, or the rerun would not match.
    import kb.consolidate.scan as scan

    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    (ws.knowledge_dir / "perf" / "01-broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    first = consolidate(ws, commit=False)
    assert [w.path for w in first.warnings if w.kind == "unreadable"] == ["knowledge/perf/01-broken.md"]

    def boom(*_args, **_kwargs):
        raise AssertionError("the rerun read a file body")

    monkeypatch.setattr(scan, "read_knowledge_parts", boom)
    monkeypatch.setattr(scan, "read_drop_file", boom)
    again = consolidate(ws, commit=False)
    assert again.nothing_to_consolidate
    assert [w.path for w in again.warnings if w.kind == "unreadable"] == ["knowledge/perf/01-broken.md"]


def test_a_drop_naming_a_knowledge_file_whose_folder_has_a_space_accounts_for_it(tmp_path):
    from kb.consolidate.scan import knowledge_ref

    assert knowledge_ref("knowledge/my notes/00-f.md") == "knowledge/my notes/00-f.md"
    assert knowledge_ref("`knowledge/my notes/00-f.md`") == "knowledge/my notes/00-f.md"
    assert knowledge_ref("knowledge/../../etc/x.md") is None
    assert knowledge_ref("Created `knowledge/io/x.md` (new)") == "knowledge/io/x.md"  # found in text, as before
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "my notes/00-f.md", "Phi", 1, plan="plans/p.md", part=1)
    result = consolidate(ws, commit=False)
    assert result.added == ["knowledge/my notes/00-f.md"]
    assert [w.message for w in result.warnings if w.kind in ("missing-knowledge-file", "unaccounted-file")] == []
