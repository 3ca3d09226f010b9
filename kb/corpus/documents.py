"""One indexed document of the local corpus, and how it travels to disk and into a Passage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kb.engine.types import Passage


@dataclass
class CorpusDoc:
    """A searchable piece of text: a docstring, a ``##`` section of a Markdown file, or a text chunk."""

    kind: str  # "doc" | "knowledge" | "folder"
    locator: str  # module path (torch.utils.checkpoint.checkpoint) or workspace-relative path[#anchor]
    title: str
    text: str  # Markdown-ish prose: paragraphs and bullet items separated by blank lines
    examples: list[str] = field(default_factory=list)  # runnable Python (doctest prompts stripped)
    deprecated: bool = False
    source: str | None = None  # what it came from, for attribution: "torch 2.13.0", a file's title
    keywords: str = ""  # extra words indexed but not shown (e.g. the locator split into words)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CorpusDoc":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def to_passage(self, score: float, query: str | None = None) -> Passage:
        return Passage(kind=self.kind, locator=self.locator, title=self.title, text=self.text,
                       score=score, examples=list(self.examples), query=query)


def is_test_name(part: str) -> bool:
    """A test module's name (deepspeed.sequence.test_autosp, torch._inductor.config.test_configs): it teaches no
    user. (A class named Test... may be an API: unittest.TestCase.)"""
    lower = part.lower()
    return lower.startswith("test_") or lower.endswith("_test")
