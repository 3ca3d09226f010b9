"""Rewrite many drops at once, cheaply and without ever leaving one half-written.

Stamping a drop changes one line of it. Replacing each of 10,000 drops with a new file
(temp + rename) allocates 10,000 data blocks and frees 10,000 others, and on some
filesystems (``discard`` mounts, ext4 without a journal) each of those costs a device
round trip: seconds in all. So the batch goes through a redo journal instead:

1. every new content goes into ONE journal file under ``.kb/``, made durable (temp,
   fsync, rename) before any drop is touched;
2. each drop is rewritten in place (same inode, same blocks);
3. one filesystem flush (Linux ``syncfs``; else one fsync per file) makes them durable;
4. the journal is removed.

Step 2 may be shared by several processes (:func:`rewrite_from_journal`, one shard each)
and steps 3-4 (:func:`finish_journal`) may come later, while the caller goes on: until
the journal is gone, a crash at any point is repaired by replaying it.

A crash before step 1 completes leaves every drop untouched (no journal, or only its
temp file); a crash after it leaves a journal that :func:`recover` replays, rewriting
each listed file whole, before anything reads the drops again. Steps 2-4
(:func:`apply_journal`) may run in other processes: the journal is all they need.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Iterable

from kb.consolidate.scan import Stat, stat_key
from kb.fsutil import atomic_write_bytes, flush_filesystem, fsync_file, fsync_folder

JOURNAL = "stamp.journal"
MAGIC = b"KBSTAMP1\n"
FLUSH_ALL_MIN = 16  # from this many files on, one filesystem flush beats one fsync each
_ENTRY = struct.Struct(">II")  # path length, data length

# Module names, so a test can stand in for the filesystem flush or count the fsyncs.
_flush_filesystem = flush_filesystem
_fsync_path = fsync_file


class JournalError(ValueError):
    """A stamp journal that is not whole (a crash while it was written): nothing was touched."""


def _encode(files: dict[str, bytes]) -> bytes:
    chunks = [MAGIC]
    for rel, data in files.items():
        name = rel.encode("utf-8", "surrogateescape")
        chunks += [_ENTRY.pack(len(name), len(data)), name, data]
    body = b"".join(chunks)
    return body + hashlib.sha256(body).digest()


def _decode(blob: bytes) -> dict[str, bytes]:
    body, digest = blob[:-32], blob[-32:]
    if not body.startswith(MAGIC) or hashlib.sha256(body).digest() != digest:
        raise JournalError("not a whole stamp journal")
    files: dict[str, bytes] = {}
    at = len(MAGIC)
    while at < len(body):
        size_name, size_data = _ENTRY.unpack_from(body, at)
        at += _ENTRY.size
        rel = body[at : at + size_name].decode("utf-8", "surrogateescape")
        at += size_name
        files[rel] = body[at : at + size_data]
        at += size_data
    if at != len(body):
        raise JournalError("a stamp journal entry runs past its end")
    return files


def _inside(base: str, rel: str) -> str:
    # Plain string checks: this runs once per drop, 10,000 times for a big first run. The
    # usual name (no "..", not absolute, some character besides "." and "/") is let through
    # at once; anything else is looked at part by part.
    if not (rel[:1] not in ("/", "") and ".." not in rel and rel.strip("./")):
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts or all(part in ("", ".") for part in parts):
            raise JournalError(f"a stamp journal names a path outside the workspace: {rel}")
    return os.path.join(base, rel)


def write_journal(folder: Path, files: dict[str, bytes]) -> bool:
    """Make the journal of ``files`` (workspace-relative path -> new bytes) durable in
    ``folder``; no file is touched yet. False when there is nothing to write."""
    if not files:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    journal, tmp = folder / JOURNAL, folder / f"{JOURNAL}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(_encode(files))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, journal)
    fsync_folder(folder)
    return True


def apply_journal(root: Path, folder: Path) -> int:
    """Rewrite each file ``folder``'s journal names in place, make them durable, remove the
    journal; returns how many files. A journal that is not whole is removed untouched (no
    file was rewritten from it). The same call finishes a stamp a crash cut short."""
    (folder / f"{JOURNAL}.tmp").unlink(missing_ok=True)  # never complete: nothing was touched
    files = _read_journal(root, folder)
    if files is None:
        return 0
    for path, data in files:
        _rewrite(path, data, sync=len(files) < FLUSH_ALL_MIN)
    finish_journal(root, folder, [path for path, _ in files])
    return len(files)


def rewrite_from_journal(root: Path, folder: Path, shard: int = 0, shards: int = 1) -> dict[str, Stat]:
    """Step 2 alone, for every ``shards``-th file of the journal from the ``shard``-th on,
    so that several processes share it; returns each rewritten path's stat as it was just
    written (the caller records it without a stat of its own). Nothing is made durable and
    the journal stays: :func:`finish_journal` follows once every shard is done."""
    files = _read_journal(root, folder) or []
    return {path: _rewrite(path, data, sync=len(files) < FLUSH_ALL_MIN) for path, data in files[shard::shards]}


def finish_journal(root: Path, folder: Path, paths: list[str]) -> None:
    """Steps 3 and 4: make the rewritten ``paths`` durable, then remove the journal."""
    if len(paths) >= FLUSH_ALL_MIN and not _flush_filesystem(root):
        for path in paths:
            _fsync_path(path)
    (folder / JOURNAL).unlink(missing_ok=True)
    fsync_folder(folder)


def journal_paths(root: Path, rels: Iterable[str]) -> list[str]:
    """The files a journal of ``rels`` rewrites, as :func:`finish_journal` takes them."""
    base = os.fspath(root)
    return [_inside(base, rel) for rel in rels]


def _read_journal(root: Path, folder: Path) -> list[tuple[str, bytes]] | None:
    """(path, new bytes) for each file the journal names; None when there is no journal, and
    [] for one that is not whole (a crash while it was written: nothing was touched)."""
    try:
        blob = (folder / JOURNAL).read_bytes()
    except FileNotFoundError:
        return None
    try:
        files = _decode(blob)
        return list(zip(journal_paths(root, files), files.values()))
    except (JournalError, struct.error):
        return []


recover = apply_journal  # at the start of a run: what a crash left


def _write_at(fd: int, data: memoryview, offset: int) -> int:
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows has no pwrite
    return os.write(fd, data)


def _rewrite(path: str, data: bytes, sync: bool) -> Stat:
    """Write ``data`` over ``path``; returns the file's stat once written."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        atomic_write_bytes(Path(path), data)  # gone since (a replay after someone deleted it)
        return stat_key(os.stat(path))
    try:
        st = os.fstat(fd)
        if st.st_nlink > 1:
            # Another name shares this inode (a hard-linked backup, say): in place would change it too.
            os.close(fd)
            fd = -1
            atomic_write_bytes(Path(path), data)
            return stat_key(os.stat(path))
        view, at = memoryview(data), 0
        while at < len(data):
            at += _write_at(fd, view[at:], at)
        if len(data) < st.st_size:
            os.ftruncate(fd, len(data))
        if sync:
            os.fsync(fd)
        return stat_key(os.fstat(fd))
    finally:
        if fd >= 0:
            os.close(fd)
