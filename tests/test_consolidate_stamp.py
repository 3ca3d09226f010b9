"""Stamping many drops at once: a redo journal, each drop rewritten in place, one flush;
a crash at any point leaves every drop old, new, or replayed whole by the next run."""

from __future__ import annotations

import os

import pytest

from kb.consolidate import consolidate, stamp
from kb.records import read_drop
from test_consolidate_support import add_part, make_workspace


def _files(tmp_path, n):
    folder = tmp_path / "d"
    folder.mkdir()
    rels = [f"d/f{i}.md" for i in range(n)]
    for i, rel in enumerate(rels):
        (tmp_path / rel).write_text(f"old content of file {i}\n")
    return folder, rels


def _journal_folder(tmp_path):
    return tmp_path / ".kb" / "consolidate"


def _stamp(root, files, folder):
    """What consolidate does: the journal first, then the rewrites it names."""
    if stamp.write_journal(folder, files):
        stamp.apply_journal(root, folder)


def test_each_file_gets_its_new_bytes_in_place_longer_or_shorter_and_the_journal_goes(tmp_path):
    folder, rels = _files(tmp_path, 20)
    os.chmod(tmp_path / rels[3], 0o600)
    inodes = [(tmp_path / rel).stat().st_ino for rel in rels]
    new = {rel: (f"new {i}\n" if i % 2 else f"a much longer new content for file {i}\n" * 3).encode() for i, rel in enumerate(rels)}
    _stamp(tmp_path, new, _journal_folder(tmp_path))
    assert [(tmp_path / rel).read_bytes() for rel in rels] == list(new.values())
    assert [(tmp_path / rel).stat().st_ino for rel in rels] == inodes  # the same files, no new inodes
    assert (tmp_path / rels[3]).stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in folder.iterdir()) == sorted(rel.split("/")[1] for rel in rels)
    assert list(_journal_folder(tmp_path).iterdir()) == []


def test_without_a_filesystem_flush_each_file_is_fsynced(tmp_path, monkeypatch):
    _, rels = _files(tmp_path, 20)
    monkeypatch.setattr(stamp, "_flush_filesystem", lambda folder: False)
    synced = []
    monkeypatch.setattr(stamp, "_fsync_path", synced.append)
    _stamp(tmp_path, {rel: b"new\n" for rel in rels}, _journal_folder(tmp_path))
    assert sorted(synced) == sorted(str(tmp_path / rel) for rel in rels)
    assert all((tmp_path / rel).read_text() == "new\n" for rel in rels)


def test_a_hard_linked_file_is_replaced_not_changed_under_its_other_name(tmp_path):
    _, rels = _files(tmp_path, 3)
    backup = tmp_path / "backup.md"
    os.link(tmp_path / rels[1], backup)
    _stamp(tmp_path, {rel: b"new\n" for rel in rels}, _journal_folder(tmp_path))
    assert [(tmp_path / rel).read_text() for rel in rels] == ["new\n"] * 3
    assert backup.read_text() == "old content of file 1\n"


def test_a_crash_half_way_is_replayed_whole_from_the_journal(tmp_path, monkeypatch):
    _, rels = _files(tmp_path, 20)
    new = {rel: f"stamped {i}\n".encode() for i, rel in enumerate(rels)}
    real_pwrite = os.pwrite
    calls = []

    def dies(fd, data, offset):
        calls.append(fd)
        if len(calls) == 5:
            real_pwrite(fd, bytes(data[:3]), offset)  # a torn write, then the crash
            raise KeyboardInterrupt("killed")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", dies)
    with pytest.raises(KeyboardInterrupt):
        _stamp(tmp_path, new, _journal_folder(tmp_path))
    monkeypatch.undo()
    texts = [(tmp_path / rel).read_text() for rel in rels]
    assert texts[:4] == [f"stamped {i}\n" for i in range(4)] and texts[4].startswith("sta") and texts[5] == "old content of file 5\n"
    assert stamp.recover(tmp_path, _journal_folder(tmp_path)) == 20
    assert [(tmp_path / rel).read_bytes() for rel in rels] == list(new.values())
    assert list(_journal_folder(tmp_path).iterdir()) == []
    assert stamp.recover(tmp_path, _journal_folder(tmp_path)) == 0  # nothing left to replay


@pytest.mark.parametrize("damage", ["cut short", "flipped byte", "temp only"])
def test_a_journal_that_is_not_whole_touches_nothing_and_is_removed(tmp_path, damage):
    _, rels = _files(tmp_path, 4)
    folder = _journal_folder(tmp_path)
    folder.mkdir(parents=True)
    blob = stamp._encode({rel: b"never\n" for rel in rels})
    if damage == "cut short":
        (folder / stamp.JOURNAL).write_bytes(blob[: len(blob) // 2])
    elif damage == "flipped byte":
        (folder / stamp.JOURNAL).write_bytes(blob[:20] + bytes([blob[20] ^ 1]) + blob[21:])
    else:
        (folder / f"{stamp.JOURNAL}.tmp").write_bytes(blob)
    assert stamp.recover(tmp_path, folder) == 0
    assert [(tmp_path / rel).read_text() for rel in rels] == [f"old content of file {i}\n" for i in range(4)]
    assert list(folder.iterdir()) == []


def test_a_journal_naming_a_path_outside_the_workspace_is_not_replayed(tmp_path):
    folder = _journal_folder(tmp_path / "ws")
    folder.mkdir(parents=True)
    (folder / stamp.JOURNAL).write_bytes(stamp._encode({"../outside.md": b"escaped\n"}))
    assert stamp.recover(tmp_path / "ws", folder) == 0
    assert not (tmp_path / "outside.md").exists()


@pytest.mark.parametrize("rel,inside", [
    ("drops/KNOWLEDGE-DROP-a-2025-11-16-1438.md", True), ("./drops/x.md", True), ("drops/a..b.md", True),
    ("...", True), ("a/.../b", True), ("../outside.md", False), ("drops/../../x", False), ("a/..", False),
    ("..", False), ("/etc/passwd", False), ("", False), (".", False), ("./", False), ("././/", False),
])
def test_journal_paths_refuse_every_name_that_leaves_the_workspace(tmp_path, rel, inside):
    if inside:
        assert stamp.journal_paths(tmp_path, [rel]) == [os.path.join(tmp_path, rel)]
    else:
        with pytest.raises(stamp.JournalError):
            stamp.journal_paths(tmp_path, [rel])


def test_consolidate_replays_a_crashed_stamp_before_it_reads_the_drops(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path)
    for i in range(20):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    real_pwrite = os.pwrite
    calls = []

    def dies(fd, data, offset):
        calls.append(fd)
        if len(calls) == 7:
            raise KeyboardInterrupt("killed")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", dies)
    with pytest.raises(KeyboardInterrupt):
        consolidate(ws, now="2025-11-20T10:00:00Z")
    monkeypatch.undo()
    drops = sorted(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    assert sum(read_drop(p).consolidated is not None for p in drops) == 6  # cut off at the 7th
    again = consolidate(ws, now="2025-11-21T09:00:00Z")
    assert [read_drop(p).consolidated for p in drops] == ["2025-11-20T10:00:00Z"] * 20  # replayed, not restamped
    assert again.drops == []
    assert not (ws.root / ".kb" / "consolidate" / stamp.JOURNAL).exists()


def test_a_drop_edited_after_it_was_read_is_stamped_as_it_is_now(tmp_path, monkeypatch):
    import kb.consolidate.engine as engine

    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    edited = sorted(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))[1]
    original = engine._stamp_drops

    def edit_then_stamp(root, drops, when, prepared):
        assert len(prepared) == 3  # the readers stamped all three already
        edited.write_text(edited.read_text() + "\nA note added while consolidate ran.\n")
        return original(root, drops, when, prepared)

    monkeypatch.setattr(engine, "_stamp_drops", edit_then_stamp)
    consolidate(ws, now="2025-11-20T10:00:00Z")
    assert "A note added while consolidate ran." in edited.read_text()
    assert all(read_drop(p).consolidated == "2025-11-20T10:00:00Z" for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*"))


_REAL_REWRITE = stamp.rewrite_from_journal


def _rewrite_and_say_where(root, folder, shard, shards):
    """Stands in for stamp.rewrite_from_journal: notes which process rewrote which shard."""
    stats = _REAL_REWRITE(root, folder, shard, shards)
    (root / f"shard-{shard}-of-{shards}").write_text(f"{os.getpid()} {len(stats)}")
    return stats


def test_with_worker_processes_the_workers_share_the_rewrite(tmp_path, monkeypatch):
    from kb.consolidate import scan

    ws = make_workspace(tmp_path)
    for i in range(20):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    monkeypatch.setattr(scan, "PARALLEL_MIN", 2)
    monkeypatch.setattr(scan.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(stamp, "rewrite_from_journal", _rewrite_and_say_where)
    real_flush = stamp._flush_filesystem
    monkeypatch.setattr(stamp, "_flush_filesystem", lambda root: (root / "flushed-by").write_text(str(os.getpid())) and real_flush(root))
    result = consolidate(ws, now="2025-11-20T10:00:00Z")
    assert len(result.drops) == 20
    shards = [(ws.root / f"shard-{i}-of-2").read_text().split() for i in range(2)]
    assert sorted(int(count) for _, count in shards) == [10, 10]  # every drop rewritten, once
    assert all(int(pid) != os.getpid() for pid, _ in shards)  # by the workers
    assert int((ws.root / "flushed-by").read_text()) != os.getpid()  # made durable by a worker too
    assert all(read_drop(p).consolidated == "2025-11-20T10:00:00Z" for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    assert not (ws.root / ".kb" / "consolidate" / stamp.JOURNAL).exists()
    # The cache holds the stamped drops with the stats the workers saw as they wrote them:
    # the rerun trusts it and reads no drop again.
    monkeypatch.setattr(scan, "read_drop_file", lambda *_: pytest.fail("the rerun read a drop"))
    assert consolidate(ws).nothing_to_consolidate


def test_rewrite_shards_cover_the_journal_and_only_finish_removes_it(tmp_path):
    folder = _journal_folder(tmp_path)
    rels = [f"drops/d{i}.md" for i in range(40)]
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("old\n")
    assert stamp.write_journal(folder, {rel: f"new {rel}\n".encode() for rel in rels})
    shards = [stamp.rewrite_from_journal(tmp_path, folder, i, 3) for i in range(3)]
    assert [len(shard) for shard in shards] == [14, 13, 13]
    assert [(tmp_path / rel).read_text() for rel in rels] == [f"new {rel}\n" for rel in rels]
    # Each shard says what it wrote as a stat would: the caller records the drops with these.
    for shard in shards:
        for path, (mtime_ns, size, inode) in shard.items():
            st = os.stat(path)
            assert (mtime_ns, size, inode) == (st.st_mtime_ns, st.st_size, st.st_ino)
    assert (folder / stamp.JOURNAL).exists()  # not durable yet: a crash now replays it
    stamp.finish_journal(tmp_path, folder, stamp.journal_paths(tmp_path, rels))
    assert not (folder / stamp.JOURNAL).exists()
