"""Results of earlier runs, keyed by snippet (chain) hash + environment fingerprint.

Kept in .kb/snippet-cache.json (local state): results of several environments (CPU here, CUDA on
the GPU box) live side by side, so switching back does not rerun anything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kb.fsutil import atomic_write_text

CACHE_NAME = "snippet-cache.json"
# Statuses worth remembering: what ran. Skips are recomputed (cheap, and the machine may change).
CACHEABLE = {"pass", "fail", "timeout", "error"}


def chain_keys(hashes: list[str]) -> list[str]:
    """A kb:continue snippet's result depends on the snippets before it: key each by its prefix."""
    keys, acc = [], ""
    for value in hashes:
        acc = hashlib.sha256(f"{acc}|{value}".encode()).hexdigest()[:24] if acc else value
        keys.append(acc)
    return keys


class ResultCache:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / CACHE_NAME
        self.entries: dict[str, dict[str, dict]] = {}
        self.dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == 1 and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError):
            pass

    def get(self, fingerprint: str, key: str) -> dict | None:
        return self.entries.get(fingerprint, {}).get(key)

    def put(self, fingerprint: str, key: str, result: dict) -> None:
        if result.get("status") in CACHEABLE:
            self.entries.setdefault(fingerprint, {})[key] = result
            self.dirty = True

    def prune(self, fingerprint: str, keep: set[str]) -> None:
        """Forget this environment's results for snippets that no longer exist (edited or deleted)."""
        mine = self.entries.get(fingerprint, {})
        stale = [k for k in mine if k not in keep]
        for key in stale:
            del mine[key]
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        if self.dirty:
            atomic_write_text(self.path, json.dumps({"version": 1, "entries": self.entries}, separators=(",", ":")))
            self.dirty = False
