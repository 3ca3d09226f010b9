"""BM25 search over the sections of the knowledge tree, for the site's search box.

The ranking is the offline engine's (kb.corpus.index.CorpusIndex: bm25s over stemmed,
identifier-split words), so "checkpointing" finds `checkpoint` here as it does for a
runner. The documents differ: the site needs the knowledge tree alone, split at every
heading so a hit can link to its section's anchor, in memory, rebuilt when a knowledge
file changes (the caller keys it by the files' mtimes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from kb.corpus.documents import CorpusDoc
from kb.corpus.index import CorpusIndex
from kb.corpus.tokenize import tokenize as terms_of

TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass
class Section:
    """One searchable piece of a knowledge file: a heading and the text up to the next heading."""

    page: str  # URL path of the file's page
    anchor: str  # heading id ('' for text above the first heading)
    heading: str
    file_title: str
    text: str

    @property
    def url(self) -> str:
        return f"{self.page}#{self.anchor}" if self.anchor else self.page


@dataclass
class Hit:
    section: Section
    score: float
    excerpt_html: str


_FENCE_LINE = re.compile(r"^\s{0,3}(```|~~~).*$", re.M)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.M)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[#*`>|]+")
_SPACE = re.compile(r"\s+")


def plain(markdown: str) -> str:
    """Section text with Markdown punctuation thinned out, for excerpts."""
    text = _TABLE_RULE.sub(" ", _FENCE_LINE.sub(" ", markdown))
    text = _MARKUP.sub(" ", _LINK.sub(r"\1", text))
    return _SPACE.sub(" ", text).strip()


class SectionIndex:
    """A BM25 index over sections; ``search`` returns the best sections with a highlighted excerpt."""

    def __init__(self, sections: list[Section]):
        self.sections = sections
        # The heading is indexed as the document's keywords and title: a query naming a section finds it first.
        self._index = CorpusIndex.build([
            CorpusDoc(kind="knowledge", locator=s.url, title=s.heading, text=s.text,
                      keywords=f"{s.heading} {s.file_title}")
            for s in sections
        ])

    def search(self, query: str, k: int = 20) -> list[Hit]:
        """The ``k`` best sections for ``query`` (none when no query word occurs in the tree)."""
        terms = set(terms_of(query))
        if not terms or not self.sections:
            return []
        return [Hit(self.sections[hit.index], hit.score, excerpt(self.sections[hit.index].text, terms))
                for hit in self._index.search(query, k)]


def _matches(word: str, terms: set[str]) -> bool:
    return any(t in terms for t in terms_of(word))


def excerpt(markdown: str, terms: set[str], width: int = 260) -> str:
    """HTML: a window of the section's text around the first query word, the words marked (``terms``: stemmed)."""
    text = plain(markdown)
    start = 0
    for match in TOKEN.finditer(text.lower()):
        if _matches(match.group(), terms):
            start = max(0, match.start() - width // 3)
            break
    window = text[start : start + width]
    if start > 0:
        window = "… " + window.split(" ", 1)[-1]
    if start + width < len(text):
        window = window.rsplit(" ", 1)[0] + " …"
    out: list[str] = []
    last = 0
    for match in TOKEN.finditer(window):
        if _matches(match.group(), terms):
            out.append(escape(window[last : match.start()]))
            out.append(f"<mark>{escape(match.group())}</mark>")
            last = match.end()
    out.append(escape(window[last:]))
    return "".join(out)
