"""Which knowledge file quotes a passage first, so no excerpt or example appears in two files.

Order is the plan's: a file of an earlier batch comes first (read from disk, as it was written),
then, within a batch, the lower PART number (what that PART's research chooses, computed here
the same way, so PARTs running side by side agree whatever order they finish in). A later
file links to the earlier one instead of quoting again: by docstring (its locator), and by text
for the same words in two docstrings (a warning both DDP and ZeroRedundancyOptimizer carry).
Only files of the same topic folder count, as a reader browses them together.
"""

from __future__ import annotations

import posixpath
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kb.engine.types import ContextDoc, Research
from kb.plan import load_plan
from kb.plan.model import Part
from kb.records import read_knowledge

MIN_TEXT = 40  # shorter words ("Default: None.") say nothing a reader would call a repeated excerpt


def normalize(text: str) -> str:
    """Text as compared across files: no quote markers, escapes or layout whitespace."""
    text = re.sub(r"(?m)^\s*>\s?", "", text)
    return " ".join(text.replace("\\", "").split())


@dataclass
class Elsewhere:
    """What the files before this one quote: by locator, and their words."""

    locators: dict[str, tuple[str, str]] = field(default_factory=dict)  # locator -> (<knowledge root>/<file>, title)
    texts: list[tuple[str, str, str]] = field(default_factory=list)  # (normalized words, <knowledge root>/<file>, title)

    def owner(self, locator: str) -> tuple[str, str] | None:
        return self.locators.get(locator)

    def quoting(self, text: str) -> tuple[str, str] | None:
        """The earlier file that already says ``text`` word for word, if any."""
        words = normalize(text)
        if len(words) < MIN_TEXT:
            return None
        return next(((where, title) for said, where, title in self.texts if words in said), None)


class QuoteOwners:
    """Builds each PART's :class:`Elsewhere` from the workspace and the plan, once per plan and PART."""

    def __init__(self, workspace, research: Callable[[Part, list[ContextDoc]], Research]):
        self.workspace = workspace
        self._research = research  # the researcher's (memoized) research of a PART: what it will quote
        self._plans: dict[str, list[Part]] = {}
        self._lock = threading.Lock()

    def _parts(self, plan_path: str) -> list[Part]:
        with self._lock:
            if plan_path not in self._plans:
                try:
                    self._plans[plan_path] = load_plan(Path(self.workspace.root) / plan_path).parts
                except Exception:  # noqa: BLE001 - a plan kb cannot read again names no siblings; the run reported it
                    self._plans[plan_path] = []
            return self._plans[plan_path]

    def elsewhere(self, plan_path: str, part: Part) -> Elsewhere:
        """What files before ``part`` (earlier batches on disk, lower PARTs of its batch) quote."""
        out = Elsewhere()
        if not part.target or part.batch is None:
            return out
        folder = posixpath.dirname(part.target)
        self._earlier_files(part, folder, out)
        for sibling in self._parts(plan_path):
            if (sibling.batch != part.batch or sibling.number >= part.number or not sibling.target
                    or posixpath.dirname(sibling.target) != folder or sibling.target == part.target):
                continue
            where = f"{self.workspace.knowledge_prefix}{sibling.target}"
            context = [ContextDoc(path=r.path, note=r.note, text=None) for r in sibling.reads]
            research = self._research(sibling, context)
            said = []
            for passages in research.by_section.values():
                for passage in passages:
                    out.locators.setdefault(passage.locator, (where, sibling.title))
                    said.append(passage.text)
                    said.extend(passage.examples)
            out.texts.append((normalize("\n\n".join(said)), where, sibling.title))
        return out

    def _earlier_files(self, part: Part, folder: str, out: Elsewhere) -> None:
        root = Path(self.workspace.knowledge_dir)
        for path in sorted((root / folder).glob("*.md")):
            rel = path.relative_to(root).as_posix()
            if rel == part.target:
                continue
            try:
                doc = read_knowledge(path)
            except (OSError, ValueError):
                continue
            meta = doc.meta
            if meta.batch is None or meta.batch >= part.batch:
                continue
            where = f"{self.workspace.knowledge_prefix}{rel}"
            if meta.engine == "offline":
                for source in meta.sources:
                    if source.kind == "doc":
                        out.locators.setdefault(source.locator, (where, meta.title))
            out.texts.append((normalize(doc.body), where, meta.title))
