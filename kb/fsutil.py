"""Filesystem helpers: crash-safe writes and paths that stay inside a root."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from kb.errors import PathError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # fsync the directory so the rename itself survives a power cut.
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`; newlines are written as given."""
    atomic_write_bytes(path, text.encode("utf-8"))


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


def resolve_inside(root: Path, candidate: Path | str, what: str = "path") -> Path:
    """Resolve ``candidate`` (absolute or relative to the cwd) and require it to lie under ``root``.

    Symlinks are resolved first, so a link pointing outside is refused too.
    """
    root_resolved = Path(root).resolve()
    resolved = Path(candidate).expanduser().resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise PathError(f"{what} {str(candidate)!r} is outside the workspace {root_resolved}")
    return resolved
