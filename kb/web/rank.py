"""Ranking web passages with the offline engine's BM25 (kb.corpus: bm25s + its tokenizer), so web and
local research score passages the same way."""

from __future__ import annotations

from kb.corpus.documents import CorpusDoc
from kb.corpus.index import CorpusIndex
from kb.engine.types import Passage


class PassageRanker:
    """A throwaway BM25 index over one PART's candidate passages, queried once per section."""

    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        docs = [CorpusDoc(kind=p.kind, locator=p.locator, title=p.title, text=p.text, examples=list(p.examples))
                for p in passages]
        self._index = CorpusIndex.build(docs)

    def rank(self, query: str, k: int) -> list[tuple[int, float]]:
        """Indices of the ``k`` best passages for ``query`` with their scores, best first (zero scores dropped)."""
        if not self.passages or k <= 0:
            return []
        return [(hit.index, hit.score) for hit in self._index.search(query, k)]
