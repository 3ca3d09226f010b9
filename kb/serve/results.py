"""The last snippet validation results (``snippets/results.json``), looked up per code block."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kb.serve.markdown import Fence
from kb.serve.urls import safe_file

RESULTS_REL = "snippets/results.json"

# status -> (css class, short label) for the badge next to a code block.
BADGES = {
    "pass": ("pass", "✓ passed"),
    "defines-only": ("muted", "defines only"),
    "fragment": ("skip", "fragment"),
    "fail": ("fail", "✗ failed"),
    "timeout": ("fail", "⏱ timed out"),
    "error": ("fail", "⚠ error"),
    "skip": ("skip", "skipped"),
    "not-executable": ("muted", "not executed"),
}


@dataclass
class SnippetResult:
    """One entry of results.json."""

    id: str
    file: str
    line: int | None
    index: int | None
    language: str
    status: str
    reason: str | None
    seconds: float | None
    stdout_tail: str
    stderr_tail: str
    snippet_file: str | None
    hash: str | None

    @property
    def badge_class(self) -> str:
        return BADGES.get(self.status, ("muted", self.status))[0]

    @property
    def count_label(self) -> str:
        """How the file's header counts blocks with this outcome ('passed', 'skipped', or the status itself)."""
        return BADGES.get(self.status, ("", self.status or "unknown"))[1].lstrip("✓✗⏱⚠ ")

    @property
    def label(self) -> str:
        """Badge text: the outcome, its time when it ran, its reason when it was skipped."""
        text = BADGES.get(self.status, ("muted", self.status or "unknown"))[1]
        if self.status == "pass" and self.seconds is not None:
            text += f" · {self.seconds:.2f} s"
        return text


@dataclass
class Match:
    """A result found for a code block; ``stale`` when the code changed since that run."""

    result: SnippetResult
    stale: bool


def fence_hash(info: str, code: str) -> str | None:
    """The hash validate-snippets gives a block with this info string and code (None without kb.snippets)."""
    try:
        from kb.snippets.extract import snippet_hash
    except ImportError:
        return None
    return snippet_hash(info, code)


@dataclass
class Results:
    """All results, indexed by knowledge file; ``problem`` says why the file could not be read."""

    entries: list[SnippetResult] = field(default_factory=list)
    problem: str | None = None
    _by_file: dict[str, list[SnippetResult]] = field(default_factory=dict, repr=False)

    def add(self, entry: SnippetResult) -> None:
        self.entries.append(entry)
        self._by_file.setdefault(entry.file, []).append(entry)

    def for_file(self, rel: str) -> list[SnippetResult]:
        return self._by_file.get(rel, [])

    def lookup(self, rel: str, fence: Fence, fence_lines: set[int]) -> Match | None:
        """The result for a fence of ``rel``: by content hash, then by line, then (stale) by position.

        ``fence_lines`` are the opening lines of every fence in the file as it is now: an entry
        whose line still opens a fence belongs to that fence and is never borrowed by another.
        """
        mine = self.for_file(rel)
        if not mine:
            return None
        current = fence_hash(fence.info, fence.code)
        if current is not None:
            same = [e for e in mine if e.hash == current]
            if same:
                # Identical code twice in one file: the entry nearest this fence's line.
                return Match(min(same, key=lambda e: abs((e.line or 0) - fence.line)), stale=False)
        found = next((e for e in mine if e.line == fence.line), None)
        if found is None:
            # Lines shift when text above a snippet is edited; its position among the fences rarely does.
            found = next((e for e in mine if e.index == fence.index and e.line not in fence_lines), None)
        if found is None:
            return None
        return Match(found, stale=current is not None and found.hash is not None and found.hash != current)



def _norm_file(value: str) -> str:
    if value.startswith("knowledge/") and "\\" not in value:
        return value  # what validate-snippets writes: nothing to normalise
    rel = value.replace("\\", "/").lstrip("./")
    return rel if rel.startswith("knowledge/") else f"knowledge/{rel}"


def _int(value) -> int | None:
    if type(value) is int:
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def load_results(root: Path) -> Results:
    """Read snippets/results.json; a missing or broken file yields no results (and says why)."""
    path = safe_file(root, RESULTS_REL, "snippets")
    return Results() if path is None else read_results(path)


def read_results(path: Path, source=None) -> Results:
    """Parse one results.json file. ``source``: a workspace path -> the site's source path, for a
    workspace whose layout is not kb's own (kb.serve.layout)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Results(problem=f"{RESULTS_REL} could not be read: {exc}")
    raw = data.get("snippets") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        return Results(problem=f"{RESULTS_REL} has no 'snippets' list")
    out = Results()
    for item in raw:
        if not isinstance(item, dict) or not item.get("file"):
            continue
        seconds = item.get("seconds")
        get = item.get
        entry = SnippetResult(
            id=str(get("id") or ""),
            file=_norm_file(str(item["file"])) if source is None else source(str(item["file"]).replace("\\", "/").lstrip("./")),
            line=_int(get("line")),
            index=_int(get("index")),
            language=str(get("language") or ""),
            status=str(get("status") or "unknown"),
            reason=get("reason") or None,
            seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
            stdout_tail=str(get("stdout_tail") or ""),
            stderr_tail=str(get("stderr_tail") or ""),
            snippet_file=get("snippet_file") or None,
            hash=get("hash") or None,
        )
        out.add(entry)
    return out
