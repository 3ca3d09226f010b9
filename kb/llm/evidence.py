"""Evidence: the retrieved passages of a PART, numbered, so that ``[n]`` names one passage, never a page.

Each passage keeps its source (title, URL or path), a locator that points into the source at the
passage (for a web page a text fragment, ``#:~:text=...``, which browsers scroll to), and its text.
The drop keeps this list, so anyone can check a sentence against what it cites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from kb.engine.types import Passage, Research
from kb.records import SourceRef


@dataclass
class Evidence:
    id: int
    passage: Passage
    sections: list[int] = field(default_factory=list)
    accessed: str | None = None

    @property
    def text(self) -> str:
        """What the support check reads: the passage's prose and its code."""
        return "\n".join([self.passage.text, *self.passage.examples])

    @property
    def locator(self) -> str:
        """Where in the source the passage is."""
        p = self.passage
        text = p.text
        head, sep, rest = text.partition(": ")
        if sep and len(head) <= 80 and not re.search(r"[.!?](\s|$)", head):
            text = rest  # research writes "<heading>: <prose>"; the page shows them apart, and the prose is matched
        words = text.split()
        if p.kind == "web" and p.locator.startswith("http") and words:
            # A text fragment names the passage's first words; "-", "," and "&" would end the directive.
            start = quote(" ".join(words[:6]), safe="").replace("-", "%2D")
            return f"{p.locator.split('#', 1)[0]}#:~:text={start}"
        return p.locator

    def record(self) -> dict:
        """The drop's entry: source, locator, the passage text (and its code)."""
        entry = {"id": self.id, "source": self.passage.title, "kind": self.passage.kind, "url": self.passage.locator,
                 "locator": self.locator, "sections": list(self.sections), "text": self.passage.text}
        if self.passage.examples:
            entry["code"] = list(self.passage.examples)
        return entry

    def source_ref(self) -> SourceRef:
        return SourceRef(id=self.id, title=self.passage.title, kind=self.passage.kind, locator=self.passage.locator,
                         accessed=self.accessed)


def number_passages(research: Research) -> tuple[list[Evidence], dict[int, list[Evidence]]]:
    """Every passage research kept, numbered 1..n in section order (a passage two sections share: one number)."""
    accessed = {s.locator: s.accessed for s in research.sources}
    numbered: dict[tuple[str, str], Evidence] = {}
    by_section: dict[int, list[Evidence]] = {}
    for number in sorted(research.by_section):
        chosen: list[Evidence] = []
        for passage in research.by_section[number]:
            key = (passage.locator, passage.text)
            evidence = numbered.get(key)
            if evidence is None:
                evidence = numbered[key] = Evidence(id=len(numbered) + 1, passage=passage,
                                                    accessed=accessed.get(passage.locator))
            if number not in evidence.sections:
                evidence.sections.append(number)
            if evidence not in chosen:
                chosen.append(evidence)
        by_section[number] = chosen
    return list(numbered.values()), by_section


def sources_section(evidence: list[Evidence], cited: set[int]) -> str:
    """The ``## Sources`` list: one line per cited passage, grouped under its page or document."""
    used = [e for e in evidence if e.id in cited]
    lines = ["## Sources", ""]
    web = [e for e in used if e.passage.kind == "web"]
    docs = [e for e in used if e.passage.kind != "web"]
    if docs:
        lines += ["### Source Documents", ""]
        lines += [f"- [{e.id}] {e.passage.title} (`{e.passage.locator}`): \"{_opening(e)}\"" for e in docs]
        lines.append("")
    if web:
        lines += ["### Web Research", ""]
        for e in web:
            accessed = f" (accessed {e.accessed})" if e.accessed else ""
            lines.append(f"- [{e.id}] [{e.passage.title}]({e.locator}): \"{_opening(e)}\"{accessed}")
        lines.append("")
    if not used:
        lines += ["No sources were cited.", ""]
    return "\n".join(lines)


def _opening(evidence: Evidence, words: int = 12) -> str:
    # Brackets, backticks and emphasis marks stay out: "x[5]" in a source line would read as a citation.
    text = evidence.passage.text.translate(str.maketrans({c: " " for c in "[]`*<>|"})).split()
    opening = " ".join(text[:words]).replace('"', "'")
    return opening + (" ..." if len(text) > words else "")
