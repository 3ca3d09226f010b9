"""Thousands of files are read on every core; the result is the same as reading them in turn."""

from __future__ import annotations

import pytest

from kb.consolidate import scan
from test_consolidate_support import add_drop, add_knowledge, make_workspace, plan_text, run_git


def _read(root, kind, rels, options):
    """One kind of file read as consolidate reads it: on worker processes when there are enough."""
    with scan.worker_pool(len(rels)) as pool:
        return next(scan.read_kinds(root, [(kind, rels, options)], pool))


@pytest.mark.parametrize("threads", [False, True])
def test_parallel_reading_matches_sequential_reading(tmp_path, monkeypatch, threads):
    import threading

    ws = make_workspace(tmp_path, git=False)
    rels = []
    for i in range(40):
        add_knowledge(ws, f"t{i % 3}/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i)
        rels.append(f"knowledge/t{i % 3}/{i:02d}-x.md")
    (ws.knowledge_dir / "t0" / "99-broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    rels.append("knowledge/t0/99-broken.md")
    add_drop(ws, "t0/00-x.md", "X0", plan="plans/p.md", part=0)
    options = scan.ReadOptions(blobs=True)
    sequential = _read(ws.root, "knowledge", rels, options)
    monkeypatch.setattr(scan, "PARALLEL_MIN", 2)
    monkeypatch.setattr(scan.os, "cpu_count", lambda: 2)
    stop = threading.Event()
    spinner = threading.Thread(target=stop.wait, daemon=True)  # like a progress spinner: no fork then
    if threads:
        spinner.start()
    try:
        parallel = _read(ws.root, "knowledge", rels, options)
    finally:
        stop.set()
    assert parallel == sequential
    assert [r for r, info, error, extra, stat in parallel if error] == ["knowledge/t0/99-broken.md"]
    # The workers' blobs are git's own ids for the files.
    first = parallel[0]
    assert first[3].blob.sha.hex() == run_git(ws.root, "hash-object", "--no-filters", first[0]).strip()
    drops = _read(ws.root, "drops", [f"drops/{p.name}" for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*")],
                           scan.ReadOptions(stamp="2025-11-20T10:00:00Z"))
    assert drops[0][1]["knowledge_file"] == "knowledge/t0/00-x.md"
    assert b"consolidated: '2025-11-20T10:00:00Z'" in drops[0][3].stamped and drops[0][3].blob is None


def test_several_kinds_share_one_pool_and_come_back_in_request_order(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path, git=False)
    for i in range(12):
        add_knowledge(ws, f"t/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i)
        add_drop(ws, f"t/{i:02d}-x.md", f"X{i}", plan="plans/p.md", part=i)
    knowledge = sorted(f"knowledge/t/{p.name}" for p in (ws.knowledge_dir / "t").iterdir())
    drops = sorted(f"drops/{p.name}" for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    requests = [("knowledge", knowledge, scan.PLAIN), ("drops", drops, scan.ReadOptions(stamp="2025-11-20T10:00:00Z"))]
    sequential = list(scan.read_kinds(ws.root, requests, None))
    monkeypatch.setattr(scan, "PARALLEL_MIN", 2)
    monkeypatch.setattr(scan, "CHUNK", 5)  # several tasks per kind
    monkeypatch.setattr(scan.os, "cpu_count", lambda: 2)
    with scan.worker_pool(24) as pool:
        assert pool is not None
        parallel = list(scan.read_kinds(ws.root, requests, pool))
    assert parallel == sequential
    assert [r[0] for r in parallel[0]] == knowledge and [r[0] for r in parallel[1]] == drops
    assert all(extra.stamped for _, _, _, extra, _ in parallel[1])


def test_workers_given_a_pack_folder_store_their_blobs_there_and_send_none_back(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path)
    for i in range(12):
        add_knowledge(ws, f"t/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i)
    rels = sorted(f"knowledge/t/{p.name}" for p in (ws.knowledge_dir / "t").iterdir())
    pack_dir = ws.root / ".git" / "objects" / "pack"
    monkeypatch.setattr(scan, "PARALLEL_MIN", 2)
    monkeypatch.setattr(scan, "CHUNK", 2)
    monkeypatch.setattr(scan, "PACK_TASKS", 3)  # 12 files: 3 tasks of 4, not 6 of 2
    monkeypatch.setattr(scan.os, "cpu_count", lambda: 2)
    with scan.worker_pool(len(rels)) as pool:
        assert pool is not None
        reads = next(scan.read_kinds(ws.root, [("knowledge", rels, scan.ReadOptions(blobs=True, pack_dir=str(pack_dir)))], pool))
    assert [r[0] for r in reads] == rels and all(extra.blob is None for _, _, _, extra, _ in reads)
    assert len(list(pack_dir.glob("pack-*.idx"))) == 3
    for rel in rels:  # git finds each file's blob in the workers' packs
        sha = run_git(ws.root, "hash-object", "--no-filters", rel).strip()
        assert run_git(ws.root, "cat-file", "-p", sha) == (ws.root / rel).read_text(encoding="utf-8")


def test_reads_keep_their_blobs_when_the_pack_cannot_be_written(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    for i in range(3):
        add_knowledge(ws, f"t/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i)
    rels = sorted(f"knowledge/t/{p.name}" for p in (ws.knowledge_dir / "t").iterdir())
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the pack folder should be\n")
    reads = scan.read_batch(str(ws.root), "knowledge", rels, scan.ReadOptions(blobs=True, pack_dir=str(blocked)))
    assert all(extra.blob is not None for _, _, _, extra, _ in reads)  # for the parent to store
    assert scan.store_blobs(reads, blocked) == 0 and blocked.read_text().startswith("a file")


def test_plans_are_read_on_the_workers_as_they_are_read_here(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path, git=False)
    (ws.plans_dir / "p.md").write_text(plan_text([(1, "perf/00-x.md", True), (2, "perf/01-y.md", False)]), encoding="utf-8")
    (ws.plans_dir / "notes.md").write_text("just notes, no plan here\n", encoding="utf-8")
    requests = [("plans", ["plans/notes.md", "plans/p.md"], scan.PLAIN)]
    sequential = list(scan.read_kinds(ws.root, requests, None))
    monkeypatch.setattr(scan, "PARALLEL_MIN", 2)
    monkeypatch.setattr(scan.os, "cpu_count", lambda: 2)
    with scan.worker_pool(2) as pool:
        assert pool is not None
        parallel = list(scan.read_kinds(ws.root, requests, pool))
    assert parallel == sequential
    infos = {rel: info for rel, info, _, _, _ in parallel[0]}
    assert infos["plans/notes.md"] is None  # a Markdown file that is no plan
    assert [(p["number"], p["status"], p["target"]) for p in infos["plans/p.md"]["parts"]] == [
        (1, "done", "perf/00-x.md"), (2, "pending", "perf/01-y.md")]
