"""Stamping many drops at once: each file replaced atomically, one flush, old copies freed later."""

from __future__ import annotations

import os

import pytest

from kb.consolidate import consolidate, stamp
from kb.records import read_drop
from test_consolidate_support import add_part, make_workspace


def _files(tmp_path, n):
    folder = tmp_path / "d"
    folder.mkdir()
    paths = [folder / f"f{i}.md" for i in range(n)]
    for i, path in enumerate(paths):
        path.write_text(f"old {i}\n")
    return folder, paths


def test_replace_many_swaps_every_file_keeps_modes_and_holds_the_old_ones(tmp_path):
    folder, paths = _files(tmp_path, 20)
    os.chmod(paths[3], 0o600)
    hold = tmp_path / "hold"
    stamp.replace_many({p: f"new {i}\n".encode() for i, p in enumerate(paths)}, hold=hold)
    assert [p.read_text() for p in paths] == [f"new {i}\n" for i in range(20)]
    assert paths[3].stat().st_mode & 0o777 == 0o600 and paths[4].stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no temp file left
    held = sorted(hold.iterdir(), key=lambda p: int(p.name))
    assert [p.read_text() for p in held] == [f"old {i}\n" for i in range(20)]
    stamp.Discard([hold]).start().wait()
    assert not hold.exists()


def test_replace_many_without_a_filesystem_flush_fsyncs_each_file(tmp_path, monkeypatch):
    _, paths = _files(tmp_path, 20)
    monkeypatch.setattr(stamp, "_flush_filesystem", lambda folder: False)
    synced = []
    original = stamp._fsync_path
    monkeypatch.setattr(stamp, "_fsync_path", lambda path: synced.append(path) or original(path))
    stamp.replace_many({p: b"new\n" for p in paths})
    assert len(synced) == 20 and all(p.read_text() == "new\n" for p in paths)


def test_a_failure_half_way_leaves_each_file_old_or_new_and_no_temp_files(tmp_path, monkeypatch):
    folder, paths = _files(tmp_path, 20)
    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 5:
            raise OSError("disk on fire")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="disk on fire"):
        stamp.replace_many({p: b"new\n" for p in paths})
    monkeypatch.undo()
    texts = [p.read_text() for p in paths]
    assert texts[:4] == ["new\n"] * 4 and texts[4:] == [f"old {i}\n" for i in range(4, 20)]
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)


def test_leftovers_of_a_crashed_stamp_are_cleaned_and_the_drops_stamped(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    for i in range(12):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    crashed = next(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    (ws.drops_dir / f".{crashed.name}{stamp.TEMP_SUFFIX}").write_text("half a stamp")
    held = ws.root / ".kb" / "consolidate" / f"{stamp.HOLD_PREFIX}123-456"
    held.mkdir(parents=True)
    (held / "0").write_text("an old drop")
    result = consolidate(ws, commit=False, now="2025-11-20T10:00:00Z")
    assert len(result.drops) == 12
    assert all(read_drop(p).consolidated == "2025-11-20T10:00:00Z" for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    assert not [p.name for p in ws.drops_dir.iterdir() if p.name.endswith(stamp.TEMP_SUFFIX)]
    assert stamp.holding_folders(ws.root / ".kb" / "consolidate") == []  # this run's and the crashed one's
