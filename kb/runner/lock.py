"""One writer per workspace: an OS file lock under ``.kb/``, and who holds it.

The lock itself is ``.kb/lock`` (filelock: an fcntl/msvcrt lock, released by the
OS when the holder dies, even by ``kill -9``). Who holds it is written beside it
in ``.kb/lock.json`` so a second process can say which pid to wait for.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from kb.errors import LockedError
from kb.fsutil import atomic_write_text
from kb.records import now_iso
from kb.workspace import Workspace

LOCK_NAME = "lock"
HOLDER_NAME = "lock.json"


def holder_info(workspace: Workspace) -> dict | None:
    """What the lock holder wrote about itself (pid, command, since), or None."""
    try:
        return json.loads((workspace.state_dir / HOLDER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _holder_text(info: dict | None) -> str:
    if not info:
        return "another kb process (its pid is not recorded yet)"
    where = "" if info.get("host") in (None, socket.gethostname()) else f" on {info['host']}"
    return f"kb process {info.get('pid', '?')}{where} (`{info.get('command', 'kb')}`, since {info.get('since', '?')})"


@contextmanager
def workspace_lock(workspace: Workspace, command: str) -> Iterator[None]:
    """Hold the workspace's write lock for the block; raise LockedError at once if another process has it."""
    state = workspace.state_dir
    state.mkdir(parents=True, exist_ok=True)
    # preserve_lock_file: unlinking a lock file on release lets a third process lock a new inode
    # while a second still holds the old one.
    lock = FileLock(state / LOCK_NAME, preserve_lock_file=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockedError(
            f"the workspace {workspace.root} is locked by {_holder_text(holder_info(workspace))}: "
            f"only one kb process may write it at a time; wait for it to finish (lock file {state / LOCK_NAME})"
        ) from None
    holder = state / HOLDER_NAME
    try:
        atomic_write_text(holder, json.dumps({
            "pid": os.getpid(),
            "command": command,
            "since": now_iso(),
            "host": socket.gethostname(),
            "argv": sys.argv[1:],
        }, indent=2) + "\n")
        yield
    finally:
        Path(holder).unlink(missing_ok=True)
        lock.release()
