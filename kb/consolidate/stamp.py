"""Replace many files at once, each atomically (temp + rename), cheaply.

``fsutil.atomic_write_bytes`` pays one fsync per file (and its folder); for the 10,000
drops a first consolidation stamps that is most of the run. Here the batch is:

1. every new content goes to a hidden temp file beside its target (no fsync yet);
2. ONE flush of the filesystem (Linux ``syncfs``) makes all of them durable; where that
   call is missing each temp file is fsynced instead, as before;
3. each temp file is renamed over its target (a reader sees the old or the new file,
   never half of one), and each folder is fsynced once.

The replaced files' old inodes are hard-linked into a holding folder before the rename
and deleted later, in a background thread (:class:`Discard`). Freeing thousands of
inodes is slow on some filesystems (``discard`` mounts wait on the device; ext4 without
a journal then also scans past every recently freed inode on each create, so freeing
while creating goes quadratic); deferring it lets that wait overlap the commit.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from kb.fsutil import flush_filesystem, fsync_file, fsync_folder

TEMP_SUFFIX = ".kb-stamp.tmp"
FLUSH_ALL_MIN = 16  # from this many files on, one filesystem flush beats one fsync each
HOLD_PREFIX = "replaced-"


# Module names, so a test can stand in for the filesystem flush or count the fsyncs.
_flush_filesystem = flush_filesystem
_fsync_folder = fsync_folder
_fsync_path = fsync_file


def remove_leftovers(folder: Path) -> int:
    """Delete temp files a crashed batch left in ``folder``; returns how many."""
    removed = 0
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".") and e.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return 0
    for entry in entries:
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError:
            pass
    return removed


def _write_new(tmp: str, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileExistsError:  # left by a crashed run: ours to replace
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
    if not hasattr(os, "fchmod"):
        os.chmod(tmp, mode)


def replace_many(files: dict[str, bytes] | dict[Path, bytes], hold: Path | None = None) -> None:
    """Atomically replace each ``path`` with its bytes; one filesystem flush for the batch.

    With ``hold`` (a folder on the same filesystem) the old files are kept there as hard
    links, for :class:`Discard` to delete later; without it the rename frees them at once.
    """
    if not files:
        return
    staged: list[tuple[str, str]] = []  # (temp, target); plain strings: this loop runs 10,000 times
    done = 0  # staged files already renamed over their targets
    try:
        for path, data in files.items():
            target = os.fspath(path)
            try:
                mode = os.stat(target).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
            head, name = os.path.split(target)
            tmp = os.path.join(head, f".{name}{TEMP_SUFFIX}")
            _write_new(tmp, data, mode)
            staged.append((tmp, target))
        if len(staged) < FLUSH_ALL_MIN or not _flush_filesystem(Path(staged[0][1]).parent):
            for tmp, _ in staged:
                _fsync_path(tmp)
        keep = None
        if hold is not None:
            try:
                hold.mkdir(parents=True, exist_ok=True)
                keep = os.fspath(hold)
            except OSError:
                keep = None
        for number, (tmp, target) in enumerate(staged):
            if keep is not None:
                try:
                    os.link(target, os.path.join(keep, str(number)))
                except FileNotFoundError:
                    pass  # the target is new: nothing to hold
                except OSError:
                    keep = None  # no hard links here (or another filesystem): free them now
            os.replace(tmp, target)
            done = number + 1
    except BaseException:
        for tmp, _ in staged[done:]:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    for folder in {os.path.dirname(target) for _, target in staged}:
        _fsync_folder(Path(folder))


class Discard:
    """Deletes holding folders in a background thread; :meth:`wait` before the process ends."""

    def __init__(self, folders: list[Path]):
        self.folders = [f for f in folders if f.exists()]
        self.thread: threading.Thread | None = None

    def start(self) -> "Discard":
        if self.folders:
            self.thread = threading.Thread(target=self._run, name="kb-discard", daemon=True)
            self.thread.start()
        return self

    def _run(self) -> None:
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None


def holding_folders(parent: Path) -> list[Path]:
    """Holding folders under ``parent`` (a crashed run's, or this run's)."""
    try:
        return sorted(p for p in parent.iterdir() if p.name.startswith(HOLD_PREFIX) and p.is_dir())
    except OSError:
        return []
