"""Read the snippet validator's last results (snippets/results.json), tolerantly.

Schema (written by `kb validate-snippets`): ``{"snippets": [{"file": "knowledge/...md",
"line": 12, "status": "pass"|"defines-only"|"fail"|"fragment"|"skip"|"timeout"|"error"|"not-executable",
"reason": ...}]}``.
Anything else in the file is ignored; entries that make no sense are skipped.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

STATUSES = ("pass", "defines-only", "fail", "fragment", "skip", "timeout", "error", "not-executable")
RESULTS = "snippets/results.json"


@dataclass
class SnippetResults:
    by_file: dict[str, Counter] = field(default_factory=dict)
    totals: Counter = field(default_factory=Counter)
    problem: str | None = None


def _file_key(value: str, prefix: str = "knowledge/") -> str | None:
    """results.json's file field as a workspace-relative path; older results named files relative
    to the knowledge root (``prefix``, the layout's; "" where the root is the workspace)."""
    text = value.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    if not text or text.startswith("/") or ".." in PurePosixPath(text).parts:
        return None
    return text if text.startswith(prefix) else f"{prefix}{text}"


def read_results(root: Path, prefix: str = "knowledge/") -> SnippetResults | None:
    """Per-file status counts, or None when there are no results yet. ``prefix``: the layout's knowledge root."""
    path = root / RESULTS
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return SnippetResults(problem=f"{RESULTS}: unreadable ({exc.__class__.__name__}); snippet status left out")
    entries = data.get("snippets") if isinstance(data, dict) else data if isinstance(data, list) else None
    if not isinstance(entries, list):
        return SnippetResults(problem=f"{RESULTS}: no \"snippets\" list; snippet status left out")
    out = SnippetResults()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            continue
        key = _file_key(entry["file"], prefix)
        if key is None:
            continue
        status = str(entry.get("status") or "error").strip().lower().replace("_", "-")
        if status not in STATUSES:
            status = "error"
        out.by_file.setdefault(key, Counter())[status] += 1
        out.totals[status] += 1
    return out


def describe(counts: Counter | dict | None) -> str:
    """``3 pass, 1 skip`` in the fixed status order."""
    if not counts:
        return ""
    return ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))
