"""A disk cache under ``.kb/cache/`` for search results, fetched pages and LLM replies.

Entries are keyed by the full request (method, URL, body, the headers that
change the answer), never by credentials: keys and auth headers are left out
of the key and of the stored request, so the cache holds nothing secret. A
rerun or a ``--resume`` therefore pays for nothing twice. ``--no-cache`` turns
reading off (fresh answers are still stored, refreshing the cache).

Why not hishel: it applies HTTP caching rules (RFC 9111), under which LLM POSTs
and most pages marked ``no-store``/short ``max-age`` are not reused, and it
stores transport bytes; kb wants every answer it paid for reused as-is, keyed
by the semantic request, and stores the parsed result.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kb.fsutil import atomic_write_text
from kb.records import now_iso

CACHE_VERSION = 1


def request_key(kind: str, request: dict[str, Any]) -> str:
    """A stable hash of a request: canonical JSON (sorted keys) of kind + request."""
    canonical = json.dumps({"v": CACHE_VERSION, "kind": kind, "request": request}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class DiskCache:
    """JSON entries in ``root/<kind>/<2 hex>/<sha256>.json``; safe for concurrent writers (atomic renames)."""

    def __init__(self, root: Path | None, *, read: bool = True, write: bool = True) -> None:
        self.root = Path(root) if root is not None else None
        self.read = read and self.root is not None
        self.write = write and self.root is not None
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_workspace(cls, state_dir: Path, *, no_cache: bool = False) -> "DiskCache":
        """The workspace's cache (``.kb/cache``); ``no_cache`` skips reading but still refreshes entries."""
        return cls(Path(state_dir) / "cache", read=not no_cache, write=True)

    @classmethod
    def disabled(cls) -> "DiskCache":
        return cls(None, read=False, write=False)

    def _path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, request: dict[str, Any]) -> Any | None:
        """The stored value for this request, or None (a corrupt entry counts as a miss)."""
        if not self.read:
            return None
        path = self._path(kind, request_key(kind, request))
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            value = entry["value"]
        except (OSError, ValueError, KeyError, TypeError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, kind: str, request: dict[str, Any], value: Any) -> None:
        """Store ``value`` (JSON-serialisable) for this request, atomically."""
        if not self.write:
            return
        path = self._path(kind, request_key(kind, request))
        entry = {"kind": kind, "stored": now_iso(), "request": request, "value": value}
        atomic_write_text(path, json.dumps(entry, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
