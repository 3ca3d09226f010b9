"""Atomic writes and path containment."""

from __future__ import annotations

import os

import pytest

from kb.errors import PathError
import kb.fsutil as fsutil
from kb.fsutil import atomic_write_text, flush_to_disk, relative_inside, resolve_inside


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a" / "b.md"
    atomic_write_text(path, "one\r\n")
    atomic_write_text(path, "two\n")
    assert path.read_bytes() == b"two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.md"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.md"
    path.write_text("old")

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.md"]


@pytest.mark.parametrize("bad", ["../../x.md", "/etc/passwd", "a/../../b.md", "", "C:/x.md", "..\\x.md"])
def test_relative_inside_refuses_escapes(bad):
    with pytest.raises(PathError):
        relative_inside(bad)


def test_relative_inside_normalises():
    assert str(relative_inside("./a//b/./c.md")) == "a/b/c.md"


def test_resolve_inside_refuses_symlink_out(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(PathError, match="outside the workspace"):
        resolve_inside(root, root / "link" / "x.md")
    assert resolve_inside(root, root / "ok.md") == (root / "ok.md").resolve()


def test_durable_writes_fsync_the_file_and_its_folder_and_others_do_not(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd))
    atomic_write_text(tmp_path / "d.md", "durable\n")
    assert len(synced) == 2 and synced[1] == str(tmp_path)  # the temp file, then the folder after the rename
    synced.clear()
    atomic_write_text(tmp_path / "n.md", "later\n", durable=False)
    assert synced == [] and (tmp_path / "n.md").read_text() == "later\n"
    os.chmod(tmp_path / "n.md", 0o600)
    atomic_write_text(tmp_path / "n.md", "again\n", durable=False)
    assert (tmp_path / "n.md").stat().st_mode & 0o777 == 0o600  # a replaced file keeps its mode


def test_flush_to_disk_uses_one_filesystem_flush_for_a_batch_else_fsyncs_each(tmp_path, monkeypatch):
    files = [tmp_path / f"f{n}.md" for n in range(4)]
    for path in files:
        atomic_write_text(path, "x\n", durable=False)
    flushed: list[str] = []
    fsynced: list[str] = []
    monkeypatch.setattr(fsutil, "flush_filesystem", lambda folder: flushed.append(str(folder)) or True)
    monkeypatch.setattr(fsutil, "fsync_file", lambda path: os.stat(path) and fsynced.append(str(path)))
    flush_to_disk(files)
    assert flushed == [str(tmp_path)] and fsynced == []  # one device: one flush
    flushed.clear()
    flush_to_disk(files[:2])  # too few to be worth flushing everything
    assert flushed == [] and sorted(fsynced) == sorted(map(str, files[:2]))
    fsynced.clear()
    monkeypatch.setattr(fsutil, "flush_filesystem", lambda folder: False)  # no syncfs here: fsync each
    flush_to_disk(files + [tmp_path / "gone.md"])
    assert sorted(fsynced) == sorted(map(str, files))
