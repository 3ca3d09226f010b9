"""Many new files: `git add` writes one pack, starting in the background; the commit is the same."""

from __future__ import annotations

from kb.consolidate import consolidate, gitops
from test_consolidate_support import add_part, make_workspace, run_git


def _count_objects(root):
    return dict(line.split(": ", 1) for line in run_git(root, "count-objects", "-v").splitlines())


def test_a_big_batch_goes_into_one_pack_and_commits_the_same_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    started = []
    original = gitops.Prestage.__init__

    def spy(self, ctx, root, rels, bulk=True):
        started.append(rels)
        original(self, ctx, root, rels, bulk)

    monkeypatch.setattr(gitops.Prestage, "__init__", spy)
    ws = make_workspace(tmp_path)
    (ws.root / "notes.txt").write_text("v1\n")
    run_git(ws.root, "add", "notes.txt")
    run_git(ws.root, "commit", "-q", "-m", "base")
    (ws.root / "notes.txt").write_text("v2 staged\n")
    run_git(ws.root, "add", "notes.txt")
    for i in range(6):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    result = consolidate(ws)
    assert started == [("knowledge", "snippets"), ("drops", "plans", "INDEX.md", "SKILL.md")]
    assert result.commit is not None
    counts = _count_objects(ws.root)
    assert int(counts["in-pack"]) >= 12 and int(counts["packs"]) >= 1
    assert run_git(ws.root, "fsck", "--no-dangling").strip() == ""
    paths = run_git(ws.root, "show", "--name-only", "--format=", "HEAD").split()
    assert len(paths) == result.commit["files"] and "notes.txt" not in paths
    assert {f"knowledge/perf/{i:02d}-x.md" for i in range(6)} | {"INDEX.md", "SKILL.md"} <= set(paths)
    assert len([p for p in paths if p.startswith("drops/KNOWLEDGE-DROP-")]) == 6
    assert run_git(ws.root, "show", ":notes.txt") == "v2 staged\n"  # still staged, as it was
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""


def test_the_final_staging_decides_even_when_the_background_add_did_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(gitops, "BULK_MIN", 1)

    def idle(self, ctx, root, rels, bulk=True):
        self.process = None  # e.g. git could not be started, or the index was locked

    monkeypatch.setattr(gitops.Prestage, "__init__", idle)
    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    result = consolidate(ws)
    assert result.commit is not None
    paths = run_git(ws.root, "show", "--name-only", "--format=", "HEAD").split()
    assert {f"knowledge/perf/{i:02d}-x.md" for i in range(3)} <= set(paths)
    assert len([p for p in paths if p.startswith("drops/KNOWLEDGE-DROP-")]) == 3
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""


def test_a_file_changed_after_the_background_add_is_committed_as_it_is_now(tmp_path, monkeypatch):
    import kb.consolidate.oracle as oracle

    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    original = oracle._stamp_drops
    target = ws.knowledge_dir / "perf/01-x.md"

    def stamp_then_edit(root, drops, when):  # runs after the background add of knowledge/ started
        discard = original(root, drops, when)
        target.write_text(target.read_text() + "\nEdited while consolidating.\n")
        return discard

    monkeypatch.setattr(oracle, "_stamp_drops", stamp_then_edit)
    assert consolidate(ws).commit is not None
    assert "Edited while consolidating." in run_git(ws.root, "show", "HEAD:knowledge/perf/01-x.md")
