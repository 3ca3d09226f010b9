"""Many new files: their blobs go into one pack kb writes (or git's bulk pack where kb
cannot), `git add` starts in the background; the commit is the same."""

from __future__ import annotations

import subprocess

import pytest

from kb.consolidate import consolidate, gitops, gitpack
from test_consolidate_support import add_part, git_init, make_workspace, plan_text, run_git


def _count_objects(root):
    return dict(line.split(": ", 1) for line in run_git(root, "count-objects", "-v").splitlines())


def test_a_big_batch_goes_into_one_pack_and_commits_the_same_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    started = []
    original = gitops.Prestage.__init__

    def spy(self, ctx, root, rels, bulk=True, first=None):
        started.append(rels)
        original(self, ctx, root, rels, bulk, first)

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

    def idle(self, command, cwd, first):
        self.first_done.set()  # and nothing else: e.g. git could not be started, or the index was locked

    monkeypatch.setattr(gitops.Prestage, "_run", idle)
    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    result = consolidate(ws)
    assert result.commit is not None
    paths = run_git(ws.root, "show", "--name-only", "--format=", "HEAD").split()
    assert {f"knowledge/perf/{i:02d}-x.md" for i in range(3)} <= set(paths)
    assert len([p for p in paths if p.startswith("drops/KNOWLEDGE-DROP-")]) == 3
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""


def test_what_the_late_background_add_staged_is_not_added_again(tmp_path, monkeypatch):
    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    calls = []
    original = gitops._run
    monkeypatch.setattr(gitops, "_run", lambda ctx, *args, **kw: calls.append(args) or original(ctx, *args, **kw))
    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    assert consolidate(ws).commit is not None
    final_adds = [args for args in calls if args[0] == "add"]
    # knowledge/ is added again (a person may have changed a file meanwhile); kb's own writes are not.
    assert final_adds == [("add", "-A", "--", "knowledge", "snippets")]
    assert len([p for p in run_git(ws.root, "show", "--name-only", "--format=", "HEAD").split() if p.startswith("drops/KNOWLEDGE-DROP-")]) == 3
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""


def test_a_file_changed_after_the_background_add_is_committed_as_it_is_now(tmp_path, monkeypatch):
    import kb.consolidate.engine as engine

    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    original = engine._stamp_drops
    target = ws.knowledge_dir / "perf/01-x.md"

    def stamp_then_edit(root, drops, when, prepared):  # runs after the background add of knowledge/ started
        journaled = original(root, drops, when, prepared)
        target.write_text(target.read_text() + "\nEdited while consolidating.\n")
        return journaled

    monkeypatch.setattr(engine, "_stamp_drops", stamp_then_edit)
    assert consolidate(ws).commit is not None
    assert "Edited while consolidating." in run_git(ws.root, "show", "HEAD:knowledge/perf/01-x.md")


def _packs(root):
    return sorted((root / ".git" / "objects" / "pack").glob("pack-*.idx"))


def test_kb_stores_the_new_blobs_in_its_packs_and_git_writes_no_loose_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    written = []
    original = gitpack.write_pack
    monkeypatch.setattr(gitpack, "write_pack", lambda folder, blobs: written.append(blobs := list(blobs)) or original(folder, blobs))
    ws = make_workspace(tmp_path)
    (ws.root / "README.md").write_text("base\n")
    run_git(ws.root, "add", "README.md")
    run_git(ws.root, "commit", "-q", "-m", "base")
    for i in range(5):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    result = consolidate(ws)
    # One pack of the knowledge files (written while the drops are read), one of the stamped drops.
    assert result.commit is not None and sorted(len(blobs) for blobs in written) == [5, 5]
    assert len(_packs(ws.root)) == 2
    packed = set()
    for index in _packs(ws.root):
        packed |= {line.split()[0] for line in run_git(ws.root, "verify-pack", "-v", str(index)).splitlines() if " blob " in line}
    committed = {}  # path -> blob id, for the knowledge files and drops in HEAD
    for line in run_git(ws.root, "ls-tree", "-r", "HEAD", "--", "knowledge", "drops").splitlines():
        meta, path = line.split("\t")
        if path.endswith(".md"):
            committed[path] = meta.split()[2]
    # Every committed knowledge file and (stamped) drop is one of kb's packed objects.
    assert len(committed) == 10 and set(committed.values()) <= packed
    loose = {folder.name + f.name for folder in (ws.root / ".git" / "objects").glob("??") for f in folder.iterdir()}
    assert loose and not loose & set(committed.values())  # git wrote trees, commits, INDEX.md...: not these
    assert run_git(ws.root, "fsck", "--no-dangling").strip() == ""
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""


def test_files_git_already_holds_at_their_path_are_not_packed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    (ws.plans_dir / "p.md").write_text(plan_text([(i + 1, f"perf/{i:02d}-x.md", True) for i in range(3)]))
    run_git(ws.root, "add", "knowledge")  # a person staged the knowledge files already
    stored = []
    original = gitops.BlobStore.store
    monkeypatch.setattr(gitops.BlobStore, "store", lambda self, blobs, root, unread: stored.append(n := original(self, blobs, root, unread)) or n)
    assert consolidate(ws).commit is not None
    assert sorted(stored) == [1, 3]  # the new plan, then the three stamped drops: not the knowledge files
    assert "plans/completed/p.md" in run_git(ws.root, "ls-files", "plans/completed").split()  # finished: moved


def test_a_sha256_repository_is_left_to_git(tmp_path, monkeypatch):
    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    ws = make_workspace(tmp_path, git=False)
    try:
        run_git(ws.root, "init", "-q", "--object-format=sha256", "-b", "main")
    except subprocess.CalledProcessError:
        pytest.skip("this git cannot make SHA-256 repositories")
    git_init(ws.root)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    monkeypatch.setattr(gitpack, "write_pack", lambda folder, blobs: pytest.fail("kb wrote a SHA-1 pack into a SHA-256 repository"))
    result = consolidate(ws)
    assert result.commit is not None and len(result.commit["sha"]) == 64
    assert run_git(ws.root, "fsck", "--no-dangling").strip() == ""
    paths = run_git(ws.root, "show", "--name-only", "--format=", "HEAD").split()
    assert len([p for p in paths if p.startswith("drops/KNOWLEDGE-DROP-")]) == 3


def test_with_worker_processes_each_stores_the_blobs_it_makes(tmp_path, monkeypatch):
    from kb.consolidate import scan

    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    monkeypatch.setattr(scan, "PARALLEL_MIN", 2)
    monkeypatch.setattr(scan.os, "cpu_count", lambda: 2)
    stored = []
    original = gitops.BlobStore.store
    monkeypatch.setattr(gitops.BlobStore, "store", lambda self, blobs, root, unread: stored.append(sorted(blobs)) or original(self, blobs, root, unread))
    ws = make_workspace(tmp_path)
    for i in range(5):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    result = consolidate(ws)
    assert result.commit is not None
    assert stored == [[], []]  # this process packed no knowledge file and no drop: the workers did
    packed = set()
    for index in _packs(ws.root):
        packed |= {line.split()[0] for line in run_git(ws.root, "verify-pack", "-v", str(index)).splitlines() if " blob " in line}
    committed = {line.split("\t")[0].split()[2] for line in run_git(ws.root, "ls-tree", "-r", "HEAD", "--", "knowledge", "drops").splitlines()
                 if line.endswith(".md")}
    assert len(committed) == 10 and committed <= packed
    assert run_git(ws.root, "fsck", "--no-dangling").strip() == ""
    assert run_git(ws.root, "status", "--porcelain", "--", "knowledge", "drops", "plans", "INDEX.md", "SKILL.md") == ""


def test_with_worker_processes_files_git_already_holds_are_still_not_packed_again(tmp_path, monkeypatch):
    from kb.consolidate import scan

    monkeypatch.setattr(gitops, "BULK_MIN", 1)
    monkeypatch.setattr(scan, "PARALLEL_MIN", 2)
    monkeypatch.setattr(scan.os, "cpu_count", lambda: 2)
    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    run_git(ws.root, "add", "knowledge")  # a person staged the knowledge files already
    stored = []
    original = gitops.BlobStore.store
    monkeypatch.setattr(gitops.BlobStore, "store", lambda self, blobs, root, unread: stored.append(n := original(self, blobs, root, unread)) or n)
    assert consolidate(ws).commit is not None
    # This process packs (the workers do not: git holds some of what they read): the three
    # stamped drops, and not the knowledge files git already holds.
    assert sorted(stored) == [0, 3]
    assert run_git(ws.root, "fsck", "--no-dangling").strip() == ""
