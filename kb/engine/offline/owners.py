"""Which knowledge file quotes a passage first, so no excerpt or example appears in two files.

Order is the plan's: a file of an earlier batch comes first (read from disk, as it was written),
then, within a batch, the lower PART number (what that PART's research chooses, computed here
the same way, so PARTs running side by side agree whatever order they finish in). A later
file links to the earlier one instead of quoting again: by docstring (its locator), and by text
for the same words in two docstrings (a warning both DDP and ZeroRedundancyOptimizer carry).
Only files of the same topic folder count, as a reader browses them together.
Each quoted docstring also keeps the section that quotes it, so a link can point at that section;
and the later PARTs of the same batch (written in the same run) say what they will quote, so a
section research left empty may point at the file that answers it (kb.engine.offline.writer).
"""

from __future__ import annotations

import posixpath
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mdit_py_plugins.anchors.index import slugify

from kb.engine.types import ContextDoc, Research
from kb.plan import load_plan
from kb.plan.model import Part
from kb.records import read_knowledge
from kb.report.links import long_sentences

MIN_TEXT = 40  # shorter words ("Default: None.") say nothing a reader would call a repeated excerpt


def normalize(text: str) -> str:
    """Text as compared across files: no quote markers, escapes or layout whitespace."""
    text = re.sub(r"(?m)^\s*>\s?", "", text)
    return " ".join(text.replace("\\", "").split())


@dataclass(frozen=True)
class QuotedIn:
    """The section of another knowledge file that quotes a docstring."""

    where: str  # <knowledge root>/<file>
    file_title: str
    number: int  # its planned section (0: not known)
    title: str = ""  # that section's planned title and details
    details: str = ""

    @property
    def heading(self) -> str:
        return f"Section {self.number}: {self.title}" if self.number else ""

    @property
    def locator(self) -> str:
        """The file, at the quoting section's heading anchor where it is known (GitHub's and kb serve's slug)."""
        return f"{self.where}#{slugify(self.heading)}" if self.number else self.where

    @property
    def label(self) -> str:
        return f"{self.file_title}, {self.heading}" if self.number else self.file_title


def section_of(body: str, locator: str) -> tuple[int, str] | None:
    """The first ``## Section N: title`` of a knowledge file's body that names ``locator`` in code."""
    for chunk in re.split(r"(?m)^## ", body):
        head = re.match(r"Section (\d+): (.*)", chunk)
        if head and f"`{locator}`" in chunk:
            return int(head.group(1)), head.group(2).strip()
    return None


@dataclass
class Elsewhere:
    """What the files before this one quote: by locator, and their words; and what the later files of the
    same batch will quote (``later``), which this file may link to but never counts as already said."""

    locators: dict[str, tuple[str, str]] = field(default_factory=dict)  # locator -> (<knowledge root>/<file>, title)
    texts: list[tuple[str, str, str]] = field(default_factory=list)  # (normalized words, <knowledge root>/<file>, title)
    sections: dict[str, QuotedIn] = field(default_factory=dict)  # locator -> the earlier file's section that quotes it
    later: dict[str, QuotedIn] = field(default_factory=dict)  # locator -> the first later sibling's section

    def owner(self, locator: str) -> tuple[str, str] | None:
        return self.locators.get(locator)

    def quoted_in(self, locator: str) -> QuotedIn | None:
        """The section of the file that quotes ``locator``: an earlier file's, else a later sibling's."""
        if locator in self.locators:
            where, title = self.locators[locator]
            return self.sections.get(locator) or QuotedIn(where, title, 0)
        return self.later.get(locator)

    def quoted(self) -> list[tuple[str, QuotedIn]]:
        """Every docstring another file quotes, with its section: (locator, QuotedIn)."""
        return [(loc, self.quoted_in(loc)) for loc in dict.fromkeys([*self.locators, *self.later])]

    def quoting(self, text: str) -> tuple[str, str] | None:
        """The earlier file that already says ``text``, or one of its long sentences, word for word, if any.

        Two docstrings may share a paragraph (ZeroRedundancyOptimizer's overlap warning is also
        hook_with_zero_step_interleaved's), each led by its own words: a sentence said before is a repeat.
        """
        words = normalize(text)
        if len(words) < MIN_TEXT:
            return None
        pieces = [words] + [piece for piece in long_sentences(words) if piece != words]
        return next(((where, title) for said, where, title in self.texts if any(p in said for p in pieces)), None)


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
        parts = self._parts(plan_path)
        self._earlier_files(part, folder, out, {p.target: p for p in parts if p.target})
        for sibling in parts:
            if (sibling.batch != part.batch or sibling.number == part.number or not sibling.target
                    or posixpath.dirname(sibling.target) != folder or sibling.target == part.target):
                continue
            where = f"{self.workspace.knowledge_prefix}{sibling.target}"
            context = [ContextDoc(path=r.path, note=r.note, text=None) for r in sibling.reads]
            research = self._research(sibling, context)
            planned = {s.number: s for s in sibling.sections}
            said = []
            for number, passages in research.by_section.items():
                section = planned.get(number)
                for passage in passages:
                    quoted = QuotedIn(where, sibling.title, number if section else 0,
                                      section.title if section else "", (section.details or "") if section else "")
                    if sibling.number > part.number:  # written in the same run, after this file: a link target only
                        if passage.locator not in out.locators:
                            out.later.setdefault(passage.locator, quoted)
                        continue
                    if passage.locator not in out.locators:
                        out.locators[passage.locator] = (where, sibling.title)
                        out.sections[passage.locator] = quoted
                    said.append(passage.text)
                    said.extend(passage.examples)
            if sibling.number < part.number:
                out.texts.append((normalize("\n\n".join(said)), where, sibling.title))
        return out

    def _earlier_files(self, part: Part, folder: str, out: Elsewhere, planned: dict[str, Part]) -> None:
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
                sections = {s.number: s for s in planned[rel].sections} if rel in planned else {}
                for source in meta.sources:
                    if source.kind == "doc" and source.locator not in out.locators:
                        out.locators[source.locator] = (where, meta.title)
                        found = section_of(doc.body, source.locator)
                        if found:
                            number, title = found
                            details = sections[number].details or "" if number in sections else ""
                            out.sections[source.locator] = QuotedIn(where, meta.title, number, title, details)
            out.texts.append((normalize(doc.body), where, meta.title))
