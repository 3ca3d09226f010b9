"""Helper processes that die with the kb process that started them.

A kb command killed with SIGKILL runs no clean-up: the worker processes, fork server and
docstring extractor it started would live on (each holds hundreds of MB). Each of them calls
:func:`die_with_parent` as it starts: on Linux the kernel then kills it when its parent exits
(``PR_SET_PDEATHSIG``); elsewhere it is a no-op.
"""

from __future__ import annotations

import os
import signal
import sys

PARENT_ENV = "KB_PARENT_PID"  # set for a child started with exec, so it can tell its parent died already
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Have this process killed when its parent exits; exit at once when the parent (``parent``,
    its pid, if known) is gone already."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no libc to ask: the process lives as before
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent died before the request was made: nobody will signal us


def die_with_parent_from_env() -> None:
    """:func:`die_with_parent`, for a child whose parent put its pid in ``KB_PARENT_PID``."""
    value = os.environ.get(PARENT_ENV, "")
    die_with_parent(int(value) if value.isdigit() else None)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child that calls :func:`die_with_parent_from_env`."""
    return {**env, PARENT_ENV: str(os.getpid())}
