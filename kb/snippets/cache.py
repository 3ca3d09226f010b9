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
# Statuses worth remembering: what ran (skips decided before running are recomputed: cheap, and
# the machine may change). A run that found a module missing is not kept: installing it changes
# the answer without changing the environment's fingerprint.
CACHEABLE = {"pass", "fail", "timeout", "error", "fragment", "defines-only", "skip"}


def _keep(result: dict) -> bool:
    return result.get("status") in CACHEABLE and not str(result.get("reason") or "").startswith("requires module")


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
        if _keep(result):
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


ANALYSIS_NAME = "snippet-analysis.json"


class AnalysisCache:
    """What kb read from each file and snippet without running it, so an unchanged tree is not read twice.

    ``files``: a Markdown file's content digest -> its fences (as extract_snippets found them);
    ``snippets``: a snippet hash -> its analysis (shape and requirements); ``written``: each
    snippets/ file kb wrote -> [mtime_ns, size, text digest], so an unchanged one is not read back
    to be compared. The first two depend only on the
    text and on the Python running kb (its parser, builtins and standard library), which is part of
    the key, with the analysis version.
    """

    def __init__(self, state_dir: Path, version: str) -> None:
        self.path = Path(state_dir) / ANALYSIS_NAME
        self.version = version
        self.files: dict[str, list] = {}
        self.snippets: dict[str, dict] = {}
        self.written: dict[str, list] = {}
        self.dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == version:
            files, snippets, written = data.get("files"), data.get("snippets"), data.get("written")
            if isinstance(files, dict) and isinstance(snippets, dict):
                self.files, self.snippets = files, snippets
                self.written = written if isinstance(written, dict) else {}

    def fences(self, rel: str, digest: str) -> list | None:
        """The fences of ``rel`` when its content digest is the one recorded."""
        hit = self.files.get(rel)
        return hit[1] if isinstance(hit, list) and len(hit) == 2 and hit[0] == digest else None

    def put_fences(self, rel: str, digest: str, fences: list) -> None:
        self.files[rel] = [digest, fences]
        self.dirty = True

    def analysis(self, snippet_hash: str) -> dict | None:
        return self.snippets.get(snippet_hash)

    def put_analysis(self, snippet_hash: str, data: dict) -> None:
        self.snippets[snippet_hash] = data
        self.dirty = True

    def prune(self, files: set[str], hashes: set[str]) -> None:
        """Forget files and snippets that are gone (after a run over the whole tree)."""
        for key in [k for k in self.files if k not in files]:
            del self.files[key]
            self.dirty = True
        for key in [k for k in self.snippets if k not in hashes]:
            del self.snippets[key]
            self.dirty = True

    def save(self) -> None:
        if self.dirty:
            data = {"version": self.version, "files": self.files, "snippets": self.snippets, "written": self.written}
            atomic_write_text(self.path, json.dumps(data, separators=(",", ":"), ensure_ascii=False))
            self.dirty = False
