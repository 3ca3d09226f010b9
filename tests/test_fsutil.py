"""Atomic writes and path containment."""

from __future__ import annotations

import os

import pytest

from kb.errors import PathError
from kb.fsutil import atomic_write_text, relative_inside, resolve_inside


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
