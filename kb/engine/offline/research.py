"""The ``local`` researcher: each planned section's best passages from the local corpus, sources numbered 1..n.

Ranking is BM25 over the section's weighted query; a passage is kept only when
it mentions what the section title is about (most of its distinctive terms) and
enough of the details, so a section the corpus does not cover gets no passage
rather than a random one. APIs the plan names (``torch.utils.checkpoint.checkpoint``)
are looked up by name first.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kb.corpus.documents import CorpusDoc
from kb.corpus.index import CorpusIndex, Progress, load_corpus
from kb.corpus.tokenize import terms, tokenize
from kb.engine.offline.excerpts import excerpt, pick_examples
from kb.engine.offline.query import SectionQuery, section_query
from kb.engine.types import ContextDoc, Passage, Research
from kb.plan.model import Part
from kb.records import SourceRef

# Other accelerators' copies of the CUDA APIs: kept, but below torch.cuda unless the query names them.
NICHE_MODULES = ("torch.xpu", "torch.mps", "torch.mtia", "torch.backends.mps", "torch.backends.xpu", "torch.ao",
                 "torch.backends.xeon", "torch.backends.mkldnn", "torch.onnx", "torch.package", "torch.fx.experimental")
NICHE_WEIGHT = 0.5
STEP0_BOOST = 1.3  # the plan's own Step 0 reads rank above other knowledge
CANDIDATES = 60


@dataclass
class Thresholds:
    """When a passage is relevant enough to quote (idf-weighted share of the query's terms it mentions)."""

    title_all: float = 0.99  # every distinctive title term: relevant whatever the details say
    title_most: float = 0.6  # most title terms ...
    overall: float = 0.5  # ... and half of title + details (title counted twice)
    context: float = 0.15  # and some of the PART's topic, so "checkpoint" (saving) is not "checkpointing" (memory)
    phrase: float = 0.5  # and half the title's word pairs said together


@dataclass
class Candidate:
    index: int
    doc: CorpusDoc
    bm25: float
    title_cov: float
    overall_cov: float
    context_cov: float = 1.0
    phrase: float = 1.0  # share of the title's word pairs found next to each other
    named: bool = False

    @property
    def rank(self) -> float:
        method = 0.85 if _family(self.doc.locator) != self.doc.locator else 1.0  # a class's own doc before its methods
        return self.bm25 * (0.5 + self.overall_cov) * (0.5 + self.phrase) * method + (1000.0 if self.named else 0.0)


@dataclass
class SectionResult:
    query: SectionQuery
    chosen: list[Candidate] = field(default_factory=list)
    rejected: list[Candidate] = field(default_factory=list)


def _coverage(index: CorpusIndex, doc_i: int, groups: list[tuple[list[str], float]], unmatched: float = 0.0) -> float:
    """Idf-weighted share of the groups' terms the document mentions; ``unmatched`` weight can never match."""
    total, got = unmatched, 0.0
    for group, weight in groups:
        for t in group:
            w = weight * index.idf(t)
            total += w
            if index.term_scores(t)[doc_i] > 0:
                got += w
    return got / total if total else 0.0


def _phrase(doc: CorpusDoc, title_terms: list[str], window: int = 3) -> float:
    """Share of consecutive title-term pairs that stand within ``window`` words of each other in the doc.

    "gradient accumulation" must be said together: a doc with "gradient" in one place
    and an ``initial_accumulator_value`` in another is not about it.
    """
    pairs = list(zip(title_terms, title_terms[1:]))
    if not pairs:
        return 1.0
    positions: dict[str, list[int]] = {}
    for n, term in enumerate(tokenize(f"{doc.keywords}\n{doc.title}\n{doc.text}")):
        if term in title_terms:
            positions.setdefault(term, []).append(n)
    hits = 0
    for a, b in pairs:
        pa, pb = positions.get(a, []), positions.get(b, [])
        if pa and pb and min(abs(x - y) for x in pa for y in pb) <= window:
            hits += 1
    return hits / len(pairs)


def _family(locator: str) -> str:
    """Methods of one class count as one family: a section quotes the class once, not five of its methods."""
    parent, _, _ = locator.rpartition(".")
    return parent if parent.rpartition(".")[2][:1].isupper() else locator


def _similar(a: CorpusDoc, b: CorpusDoc) -> bool:
    ta, tb = set(terms(a.text)), set(terms(b.text))
    return bool(ta and tb) and len(ta & tb) / len(ta | tb) >= 0.7


class SectionRanker:
    """Ranks and filters corpus documents for one planned section."""

    def __init__(self, index: CorpusIndex, thresholds: Thresholds | None = None, *, exclude: tuple[str, ...] = (),
                 boost: tuple[str, ...] = ()):
        self.index = index
        self.thresholds = thresholds or Thresholds()
        self.exclude = exclude
        self.boost = boost

    def prior(self, query: SectionQuery) -> np.ndarray:
        docs = self.index.docs
        said = set(re.findall(r"[a-z0-9]+", query.text.lower()))
        niche = tuple(m for m in NICHE_MODULES if m.rsplit(".", 1)[-1] not in said)
        weights = np.ones(len(docs), dtype=np.float32)
        for i, doc in enumerate(docs):
            if self.exclude and doc.locator.startswith(self.exclude):
                weights[i] = 0.0
            elif niche and doc.kind == "doc" and doc.locator.startswith(niche):
                weights[i] = NICHE_WEIGHT
            elif self.boost and doc.locator.startswith(self.boost):
                weights[i] = STEP0_BOOST
        return weights

    def rank(self, query: SectionQuery, limit: int) -> SectionResult:
        index, th = self.index, self.thresholds
        result = SectionResult(query)
        if not len(index):
            return result
        prior = self.prior(query)
        scores = index.score(query.weights) * prior
        named: list[int] = []
        for ref in query.refs:
            hits = [i for i in index.named(ref) if prior[i] > 0]
            hits.sort(key=lambda i: -prior[i])  # torch.cuda.memory_summary before torch.xpu.memory_summary
            if hits and hits[0] not in named:
                named.append(hits[0])
        order = list(dict.fromkeys([*named, *np.argsort(-scores, kind="stable")[:CANDIDATES].tolist()]))
        groups = [(query.title_terms, 2.0), (query.detail_terms, 1.0)]
        # A product the details name but the corpus never mentions (LAMB, Megatron-LM) counts as missed.
        unmatched = len(query.detail_missing) * index.max_idf()
        candidates = []
        for i in order:
            if scores[i] <= 0 and i not in named:
                continue
            candidates.append(Candidate(
                index=i, doc=index.docs[i], bm25=float(scores[i]),
                title_cov=_coverage(index, i, [(query.title_terms, 1.0)]) if query.title_terms else 1.0,
                overall_cov=_coverage(index, i, groups, unmatched),
                context_cov=_coverage(index, i, [(query.context_terms, 1.0)]) if query.context_terms else 1.0,
                phrase=_phrase(index.docs[i], query.title_terms), named=i in named,
            ))
        candidates.sort(key=lambda c: -c.rank)
        families: set[str] = set()
        out_of_corpus = bool(query.missing) and not named
        for cand in candidates:
            # A doc named after the title's subject (ZeroRedundancyOptimizer for "ZeRO ...") need not say the phrase.
            named_after = bool(query.subjects) and all(
                w in cand.doc.text and set(tokenize(w)[:1]) <= set(tokenize(cand.doc.keywords)) for w in query.subjects)
            phrase_ok = cand.phrase >= th.phrase or named_after
            relevant = cand.named or (not out_of_corpus and cand.context_cov >= th.context and phrase_ok
                                      and (cand.title_cov >= th.title_all or (cand.title_cov >= th.title_most
                                                                              and cand.overall_cov >= th.overall)))
            family = _family(cand.doc.locator)
            duplicate = family in families or any(_similar(cand.doc, c.doc) for c in result.chosen)
            if relevant and not duplicate and len(result.chosen) < limit:
                result.chosen.append(cand)
                families.add(family)
            else:
                result.rejected.append(cand)
        return result


def _source_title(doc: CorpusDoc) -> str:
    if doc.kind == "doc":
        return f"{doc.title}, {doc.source} docstring" if doc.source else doc.title
    return doc.title


def _context_text(part: Part) -> str:
    return " ".join([part.title, *part.searches])


class LocalResearcher:
    """A Researcher (kb.engine.types) over the workspace's local corpus (kb.corpus)."""

    name = "local"

    def __init__(self, workspace=None, *, index: CorpusIndex | None = None, passages_per_section: int = 3,
                 thresholds: Thresholds | None = None, progress: Progress | None = None,
                 loader: Callable[[], CorpusIndex] | None = None):
        if index is None and workspace is None and loader is None:
            raise ValueError("LocalResearcher needs a workspace, an index or a loader")
        self.workspace = workspace
        self.passages_per_section = passages_per_section
        self.thresholds = thresholds or Thresholds()
        self._index = index
        self._loader = loader or (lambda: load_corpus(workspace, progress=progress))
        self._lock = threading.Lock()

    def corpus(self) -> CorpusIndex:
        """The corpus index, loaded (or built) once, on first use; concurrent callers wait for it."""
        with self._lock:
            if self._index is None:
                self._index = self._loader()
            return self._index

    def describe(self) -> str:
        """What the corpus holds, in words, for the knowledge file's overview."""
        info = self.corpus().info
        parts = [f"{name} {version} docstrings" for name, version in (info.get("packages") or {}).items()]
        if info.get("knowledge_files"):
            parts.append(f"{info['knowledge_files']} knowledge files")
        if info.get("folder_files"):
            parts.append(f"{info['folder_files']} files from the configured folders")
        return ", ".join(parts) or "an empty corpus"

    async def research(self, part: Part, context: list[ContextDoc]) -> Research:
        index = await asyncio.to_thread(self.corpus)
        # Ranking is CPU work (numpy, tokenizing candidates): keep it off the event loop other PARTs share.
        return await asyncio.to_thread(self.research_sync, part, context, index)

    def rank_sections(self, part: Part, context: list[ContextDoc], index: CorpusIndex) -> list[SectionResult]:
        exclude = (f"knowledge/{part.target}",) if part.target else ()
        boost = tuple(f"knowledge/{doc.path.rstrip('/')}" for doc in context if doc.path)
        ranker = SectionRanker(index, self.thresholds, exclude=exclude, boost=boost)
        context_text = _context_text(part)
        sections = [(s.number, s.title, s.details) for s in part.sections] or [(0, part.title, " ".join(part.searches))]
        results = []
        for number, title, details in sections:
            query = section_query(index, number, title, details or "", context_text)
            results.append(ranker.rank(query, self.passages_per_section))
        return results

    def research_sync(self, part: Part, context: list[ContextDoc], index: CorpusIndex) -> Research:
        """The synchronous core of :meth:`research`."""
        warnings = list(index.info.get("warnings") or [])
        by_section: dict[int, list[Passage]] = {}
        sources: list[SourceRef] = []
        ids: dict[str, int] = {}
        for result in self.rank_sections(part, context, index):
            query = result.query
            weights = dict(query.weights)
            passages = []
            for cand in result.chosen:
                text, _best = excerpt(cand.doc, weights, index.idf, names=frozenset(query.refs))
                if not text:
                    continue
                doc = cand.doc
                passage = Passage(kind=doc.kind, locator=doc.locator, title=doc.title, text=text,
                                  score=round(cand.rank if not cand.named else cand.bm25, 4),
                                  examples=pick_examples(doc, weights, index.idf), query=query.text)
                passages.append(passage)
                if doc.locator not in ids:
                    ids[doc.locator] = len(sources) + 1
                    sources.append(SourceRef(id=ids[doc.locator], title=_source_title(doc), kind=doc.kind,
                                             locator=doc.locator))
            by_section[query.number] = passages
            if not passages:
                why = f"the corpus never mentions {', '.join(query.missing)}" if query.missing else "no passage was relevant enough"
                warnings.append(f"section {query.number} ({query.title}): nothing in the local corpus ({why})")
        return Research(by_section=by_section, sources=sources, warnings=warnings)


__all__ = ["LocalResearcher", "SectionRanker", "Thresholds"]
