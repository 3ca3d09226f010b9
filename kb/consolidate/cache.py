"""consolidate's local state under .kb/consolidate/ (git-ignored).

``state.json`` is read on every run (compact JSON: it lists every drop not yet committed): the fingerprint of the workspace after the
last consolidation (so a no-op rerun stats files and stops), its warnings, and what has
been consolidated but not committed yet. ``cache.marshal`` holds what was read from each
knowledge file, drop and plan, keyed by path and stat, so only changed files are re-read:
Python's marshal format (ten times faster than JSON for 20,000 entries), written without
an fsync: a cache lost in a power cut only means the next run reads every file again.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb import __version__
from kb.fsutil import atomic_write_bytes, atomic_write_text

FORMAT = 4  # bump when the state or the rendering inputs change meaning (2: errors; 3: drops read as a person would; 4: support)
CACHE_FORMAT = 4  # bump when what is cached per file changes meaning (2: word-pair signatures; 3: drop targets with spaces; 4: a drop's support rate)


@dataclass
class State:
    key: str | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] | None = None
    skill_name: str | None = None


def _folder(root: Path) -> Path:
    return root / ".kb" / "consolidate"


def _stamp(fmt: int = FORMAT) -> str:
    return f"{fmt}:{__version__}"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _stamp():
        return None
    return data


def load_state(root: Path) -> State:
    data = _load(_folder(root) / "state.json") or {}
    return State(
        key=data.get("key"),
        warnings=list(data.get("warnings") or []),
        errors=list(data.get("errors") or []),
        totals=dict(data.get("totals") or {}),
        pending=data.get("pending") or None,
        skill_name=data.get("skill_name"),
    )


def save_state(root: Path, state: State) -> None:
    data = {
        "format": _stamp(),
        "key": state.key,
        "warnings": state.warnings,
        "errors": state.errors,
        "totals": state.totals,
        "pending": state.pending,
        "skill_name": state.skill_name,
    }
    atomic_write_text(_folder(root) / "state.json", json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")


CACHE = "cache.marshal"
KINDS = ("knowledge", "drops", "plans")


def has_cache(root: Path) -> bool:
    """Whether a cache file is there to compare the workspace's files with."""
    return (_folder(root) / CACHE).is_file()


def load_cache(root: Path) -> dict[str, dict[str, list]]:
    """``{"knowledge"|"drops"|"plans": {path: [stat, info]}}``; empty when missing, stale or damaged."""
    try:
        data = marshal.loads((_folder(root) / CACHE).read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        data = None
    if not isinstance(data, dict) or data.get("format") != _stamp(CACHE_FORMAT):
        data = {}
    return {kind: dict(data.get(kind) or {}) for kind in KINDS}


def save_cache(root: Path, cache: dict[str, dict[str, list]]) -> None:
    data = {"format": _stamp(CACHE_FORMAT), **{kind: cache.get(kind) or {} for kind in KINDS}}
    atomic_write_bytes(_folder(root) / CACHE, marshal.dumps(data), durable=False)


def fingerprint(parts: list[tuple[str, Any]]) -> str:
    """A digest of (name, stat) pairs: equal digests mean nothing consolidate reads has changed."""
    digest = hashlib.blake2b(_stamp().encode(), digest_size=20)
    # marshal version 2 writes no back-references, so equal data always gives equal bytes.
    digest.update(marshal.dumps(parts, 2))
    return digest.hexdigest()
