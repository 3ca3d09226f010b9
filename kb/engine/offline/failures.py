"""Examples that failed validation: not quoted again.

``kb validate-snippets`` records every snippet's content hash and outcome in
snippets/results.json. An example the offline engine would write as exactly such a
snippet (same info string, same code) and that failed there is broken upstream (a
docstring calling a class that no longer exists): a rerun leaves it out and says why.
What was learned is also kept in snippets/failed-examples.json, so that a later
validation, which no longer sees the left-out example, does not make the next rerun
quote it again; it lives in snippets/ (committed by kb consolidate), not in .kb/, so a
fresh clone writes the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kb.fsutil import atomic_write_text
from kb.snippets.extract import extract_snippets
from kb.snippets.results import FAILING, load_results

STATE_NAME = "failed-examples.json"
MAX_REASON = 160


def fence_hash(info: str, code: str) -> str | None:
    """The hash ``kb validate-snippets`` gives the fence the writer renders for (info, code)."""
    found = extract_snippets("example.md", f"```{info}\n{code}\n```\n")
    return found[0].hash if len(found) == 1 else None


def _reason(entry: dict) -> str:
    text = str(entry.get("reason") or entry.get("status") or "failed").strip()
    first = text.splitlines()[0] if text else "failed"
    return first if len(first) <= MAX_REASON else first[: MAX_REASON - 1] + "…"


@dataclass
class KnownFailures:
    """Snippet hashes that failed validation, with the first line of why."""

    by_hash: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, workspace) -> "KnownFailures":
        """Failures from snippets/results.json and from what earlier runs remembered in snippets/."""
        known = cls()
        state = Path(workspace.snippets_dir) / STATE_NAME
        try:
            saved = json.loads(state.read_text(encoding="utf-8"))
            if isinstance(saved, dict):
                known.by_hash.update({str(k): str(v) for k, v in saved.items()})
        except (OSError, ValueError):
            pass
        before = dict(known.by_hash)
        for entry in load_results(workspace).get("snippets") or []:
            if isinstance(entry, dict) and entry.get("status") in FAILING and entry.get("hash"):
                known.by_hash[str(entry["hash"])] = _reason(entry)
        if known.by_hash != before:
            try:
                state.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(state, json.dumps(known.by_hash, indent=1, sort_keys=True) + "\n")
            except OSError:
                pass  # remembering is a convenience; results.json still says it this time
        return known

    def reason(self, info: str, code: str) -> str | None:
        """Why the snippet (info, code) failed validation, or None if it did not."""
        if not self.by_hash:
            return None
        digest = fence_hash(info, code)
        return self.by_hash.get(digest) if digest else None

    def __bool__(self) -> bool:
        return bool(self.by_hash)
