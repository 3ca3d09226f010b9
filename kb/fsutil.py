"""Filesystem helpers: crash-safe writes and paths that stay inside a root."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path, PurePosixPath

from kb.errors import PathError


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half.

    ``durable=False`` skips the fsyncs: the file still survives a killed process (the
    kernel has it), and :func:`flush_to_disk` makes a batch of such files survive a power
    cut with one flush instead of two fsyncs each.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(path.parent)  # so the rename itself survives a power cut


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`; newlines are written as given."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def fsync_folder(folder: Path | str) -> None:
    """fsync a folder (its entries: creations and renames); errors are ignored."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs_call():
    """``syncfs(fd) -> int`` from libc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int
    return call


def flush_filesystem(folder: Path | str) -> bool:
    """Flush every dirty file of ``folder``'s filesystem to disk (Linux ``syncfs``); False
    when that cannot be done here."""
    call = _syncfs_call()
    if call is None:
        return False
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        return call(fd) == 0
    finally:
        os.close(fd)


FLUSH_ALL_MIN = 3  # from this many files on, one filesystem flush beats an fsync of each (and its folder)


def flush_to_disk(paths: list[Path] | list[str]) -> None:
    """Make files written with ``durable=False`` (contents and renames) survive a power cut."""
    paths = [Path(p) for p in paths]
    if not paths:
        return
    if len(paths) >= FLUSH_ALL_MIN:
        devices: dict[int, Path] = {}
        for path in paths:
            try:
                devices.setdefault(os.stat(path.parent).st_dev, path.parent)
            except OSError:
                continue
        if devices and all(flush_filesystem(folder) for folder in devices.values()):
            return
    for path in paths:
        try:
            fsync_file(path)
        except FileNotFoundError:
            continue  # replaced or removed since: nothing of ours to keep
    for folder in {path.parent for path in paths}:
        fsync_folder(folder)


def sha256_text(text: str) -> str:
    """Hex SHA-256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def relative_inside(relpath: str, what: str = "path") -> PurePosixPath:
    """Validate a workspace-relative POSIX path: not absolute, no ``..``, not empty.

    Raises PathError with the reason; returns the normalised path.
    """
    raw = relpath.strip().replace("\\", "/")
    if not raw:
        raise PathError(f"{what} is empty")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise PathError(f"{what} {relpath!r} is absolute")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathError(f"{what} {relpath!r} escapes its folder")
    if not parts:
        raise PathError(f"{what} {relpath!r} is empty")
    return PurePosixPath(*parts)


def resolve_inside(root: Path, candidate: Path | str, what: str = "path", *, root_resolved: bool = False) -> Path:
    """Resolve ``candidate`` (absolute or relative to the cwd) and require it to lie under ``root``
    (``root_resolved``: the caller resolved ``root`` already).

    Symlinks are resolved first, so a link pointing outside is refused too.
    """
    root_resolved = Path(root) if root_resolved else Path(root).resolve()
    resolved = Path(candidate).expanduser().resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise PathError(f"{what} {str(candidate)!r} is outside the workspace {root_resolved}")
    return resolved
