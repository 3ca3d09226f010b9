"""BM25 search over the sections of the knowledge tree, for the site's search box.

The offline engine's corpus (kb/corpus/) indexes passages of the knowledge tree,
configured folders and package docstrings under .kb/; the site needs the knowledge
tree alone, split at headings so a hit can link to its section's anchor. So this
small index uses bm25s directly over those sections, in memory, rebuilt when a
knowledge file changes (the caller keys it by the files' mtimes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

TOKEN = re.compile(r"(?u)\b\w\w+\b")
STOPWORDS = frozenset(STOPWORDS_EN)
# Heading words count this many times: a query naming a section should find that section first.
HEADING_WEIGHT = 3


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


def tokenize(text: str) -> list[str]:
    """Lowercased words of two or more characters, English stop words removed."""
    return [t for t in TOKEN.findall(text.lower()) if t not in STOPWORDS]


def plain(markdown: str) -> str:
    """Section text with Markdown punctuation thinned out, for excerpts."""
    text = re.sub(r"^\s{0,3}(```|~~~).*$", " ", markdown, flags=re.M)
    text = re.sub(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", " ", text, flags=re.M)  # table rules
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[#*`>|]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


class SectionIndex:
    """A BM25 index over sections; ``search`` returns the best sections with a highlighted excerpt."""

    def __init__(self, sections: list[Section]):
        self.sections = sections
        self._docs = [tokenize(" ".join([s.heading] * HEADING_WEIGHT + [s.file_title, s.text])) for s in sections]
        self._bm25: bm25s.BM25 | None = None
        if any(self._docs):
            self._bm25 = bm25s.BM25()
            # An empty section still needs a token, or bm25s shifts document ids.
            self._bm25.index([d or ["\x00"] for d in self._docs], show_progress=False)

    def search(self, query: str, k: int = 20) -> list[Hit]:
        """The ``k`` best sections for ``query`` (none when no query word occurs in the tree)."""
        terms = tokenize(query)
        if self._bm25 is None or not terms:
            return []
        vocab = self._bm25.vocab_dict
        known = [t for t in terms if t in vocab]
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            Hit(self.sections[i], float(scores[i]), excerpt(self.sections[i].text, set(terms)))
            for i in order
            if scores[i] > 0
        ]


def excerpt(markdown: str, terms: set[str], width: int = 260) -> str:
    """HTML: a window of the section's text around the first query word, the words marked."""
    text = plain(markdown)
    start = 0
    for match in TOKEN.finditer(text.lower()):
        if match.group() in terms:
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
        if match.group().lower() in terms:
            out.append(escape(window[last : match.start()]))
            out.append(f"<mark>{escape(match.group())}</mark>")
            last = match.end()
    out.append(escape(window[last:]))
    return "".join(out)
