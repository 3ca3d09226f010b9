"""The ``local`` researcher: each planned section's best passages from the local corpus, sources numbered 1..n.

Ranking is BM25 over the section's weighted query; a passage is kept only when
it mentions what the section title is about (most of its distinctive terms) and
enough of the details, so a section the corpus does not cover gets no passage
rather than a random one. APIs the plan names (``torch.utils.checkpoint.checkpoint``)
are looked up by name first. A doc need not say the title's words together when
it is named for them (``torch.cuda.utilization``), documents the argument the
section means (``fused``, ``foreach=True``), or is named for the PART's topic; it
must then say every title word. Saying most of the title also takes some of the details;
a title word the corpus never says (Nsight) counts as missed. The details alone may
find the doc ("memory timeline": export_memory_timeline), and a config option documented
by a comment (kb.corpus.options) counts only when its own name says the title. A paragraph
labelled with the title's whole subject ("2. Fault tolerance: ...") fills the section alone.
Which examples run, and which file quotes a docstring first, the writer decides
(kb.engine.offline.gate, kb.engine.offline.owners); research is the same for every PART
whatever ran before it, and is kept per PART for the run (the writer asks for a sibling's).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kb.corpus.documents import CorpusDoc
from kb.corpus.docstrings import source_label
from kb.corpus.embed import load_embedder
from kb.corpus.index import CorpusIndex, Progress, load_corpus
from kb.corpus.options import SOURCE_SUFFIX
from kb.corpus.propose import ALIASES
from kb.corpus.tokenize import terms, tokenize
from kb.curation import Decision, Decisions, load_decisions, plan_key
from kb.engine.offline.excerpts import excerpt, pick_examples
from kb.engine.offline.query import ACRONYM, CASED_EXPANSIONS, EXPANSIONS, SectionQuery, section_query
from kb.engine.offline.relevance import (RelevanceJudge, expanded_terms, foreign, foreign_module, mentioned_packages,
                                         abbreviated, module_words, name_terms, named_for, partial_expansions, summary_terms,
                                         NAME_VERBS)
from kb.engine.types import ContextDoc, Passage, Research, found_nothing
from kb.plan.model import Part
from kb.records import SourceRef

# Other accelerators' copies of the CUDA APIs: kept, but below torch.cuda unless the query names them.
NICHE_MODULES = ("torch.xpu", "torch.mps", "torch.mtia", "torch.backends.mps", "torch.backends.xpu", "torch.ao",
                 "torch.backends.xeon", "torch.backends.mkldnn", "torch.onnx", "torch.package", "torch.fx.experimental")
# ... and their methods named for them (Tensor.ipu, TypedStorage.hpu beside Tensor.cuda).
NICHE_NAMES = frozenset({"xpu", "mps", "mtia", "ipu", "hpu"})
NICHE_WEIGHT = 0.5
STEP0_BOOST = 1.3  # the plan's own Step 0 reads rank above other knowledge
CANDIDATES = 60
DETAIL_CANDIDATES = 20
MAX_ARGUMENT_DOCS = 30
FILLERS = ("judged", "lexical")
DENSE_CANDIDATES = 20  # the nearest subjects by embedding, beside the lexical candidates
HUB_ARGUMENTS = 15  # an API documenting this many arguments (set_logs) is a hub: one of them names no section
NAMED_AFTER_TITLE = 0.6  # ... and its best block says this share of the title
NAME_CANDIDATES = 15  # APIs whose own name says the section's terms, judged beside the others
# A passage another file of the plan quotes answers an empty section by a link (kb.engine.offline.writer) only when
# its best block says this share of the section's title (or of its subject, below), the judge scores it this high,
# and the section that quotes it is about this one: it says this idf-weighted share of this section's subject (its
# title less the activity and the PART's own topic words: "Profiling training loop" in "Training Loop Optimization"
# is profiling).
LINK_TITLE = 0.5
LINK_SCORE = 0.6
LINK_SECTION = 0.7
# A section left empty offers this many of its best passages below the bar to a model that may judge them
# (the LLM engines: kb.llm.relevance_judge).
NEAR_MISSES = 5
JUDGED_CANDIDATES = 40  # the lexical ranker's best, judged beside the ones its rules accept  # an argument documented more widely than this (device, dtype) says nothing specific


@dataclass
class Thresholds:
    """When a passage is relevant enough to quote (idf-weighted share of the query's terms it mentions)."""

    title_all: float = 0.99  # every distinctive title term: relevant whatever the details say
    title_most: float = 0.6  # most title terms ...
    overall: float = 0.5  # ... and half of title + details (title counted twice)
    context: float = 0.15  # and some of the PART's topic, so "checkpoint" (saving) is not "checkpointing" (memory)
    phrase: float = 0.5  # and half the title's word pairs said together
    details_phrase: float = 0.99  # the details route: every word pair of the details said together
    details_most: float = 0.5  # an API named for the title, less its leading gerund, says this much of the details
    option_name: float = 0.5  # a config option's own name says this share of the title terms


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
    argument: str | None = None  # an argument of this API the section names (foreach=, "Fused ...": fused)
    argument_written: bool = False  # ... written out by the plan itself (not just a title word)
    topical: bool = False  # the API is named for the PART's topic and says all of it (torch.compile, "torch.compile ...")
    named_after: bool = False  # the API's own name is the title's subject (torch.cuda.utilization)
    detail_cov: float = 1.0  # idf-weighted share of the detail terms it mentions (1 when the plan gives none)
    detail_phrase: float = 0.0  # share of the details' word pairs said together ("memory timeline")
    activity_excused: float = 0.0  # title coverage leaving out the title's leading gerund (Measuring ...)
    option: bool = False  # a config option documented by a comment (kb.corpus.options)
    detail_argument: str | None = None  # an argument named by a title word whose own text says a detail (backend)
    name_cov: float = 1.0  # for options: idf-weighted share of the title terms its own name says
    relevant: bool = False  # the lexical rules (the old filler) accept it
    verdict: object = None  # the relevance judge's verdict (kb.engine.offline.relevance), when it judged it
    why: str = ""  # why the filler chose or left it (plan names it, by name, ..., below the bar, duplicate): for reading a run
    # The one block a section quotes of the doc: an argument item of a doc another section chose, or the
    # paragraph labelled with the section's subject.
    only: str | None = None
    curated: Decision | None = None  # a reviewer accepted it for this section in curation.toml (kb.curation)

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


def _name_terms(doc: CorpusDoc) -> tuple[str, ...]:
    """The terms of an API's own name (its last locator component): the whole word first, then its pieces."""
    return tuple(tokenize(doc.locator.rsplit(".", 1)[-1])) if doc.kind == "doc" else ()


def _named_after(doc: CorpusDoc, title_terms: list[str]) -> bool:
    """The API is named for the title's subject: its whole name, or every piece of it, is a title term."""
    name = _name_terms(doc)
    return bool(name) and (name[0] in title_terms or (len(name) > 1 and set(name[1:]) <= set(title_terms)))


def _spells_subject(doc: CorpusDoc, query: SectionQuery) -> bool:
    """The API's own name (a class or function, not a method or an option) says every word of an abbreviation the
    title writes, two or more: ZeroRedundancyOptimizer for "ZeRO", FullyShardedDataParallel for "FSDP"."""
    if doc.kind != "doc" or _family(doc.locator) != doc.locator or _is_option(doc):
        return False
    own = set(tokenize(doc.locator.rsplit(".", 1)[-1]))
    for word in query.subjects:
        expansion = CASED_EXPANSIONS.get(word) or EXPANSIONS.get(word.lower())
        spelled = set(tokenize(expansion or "")) - set(tokenize(word))
        if len(spelled) >= 2 and spelled <= own:
            return True
    return False


def titled_library(core: set[str], indexed: list[str]) -> str | None:
    """The indexed library a section's title names and nothing else the corpus knows ("Prometheus + Grafana
    dashboards": prometheus_client): the section is about that library, its details say which part of it."""
    if not core:
        return None
    for package in indexed:
        names = {package, package.replace("_", " "), *(word for word, pkg in ALIASES.items() if pkg == package)}
        # (a top-level package: a namespace one's API is not one module below it)
        if core <= {t for name in names for t in tokenize(name)} and "." not in package:
            return package
    return None


def _library_docs(index: CorpusIndex, package: str) -> list[int]:
    """The library's own top-level API (prometheus_client.Gauge, not .core.GaugeMetricFamily or Gauge.inc)."""
    cache = getattr(index, "_library_docs", None)
    if cache is None:
        cache = index._library_docs = {}
    if package not in cache:
        cache[package] = [i for i, d in enumerate(index.docs)
                          if d.kind == "doc" and d.locator.count(".") == 1 and d.locator.startswith(package + ".")]
    return cache[package]


def _library_answers(index: CorpusIndex, library: str, detail: set[str], limit: int) -> list[int]:
    """The library's top-level APIs that say a word of the section's details, the most documented first (a library
    documents what its users call at length, Gauge, and its internals in a line), one per argument list."""
    found = [i for i in _library_docs(index, library)
             if not index.docs[i].deprecated and set(tokenize(index.docs[i].text)) & detail]
    found.sort(key=lambda i: (-_documented(index.docs[i]), index.docs[i].locator))
    chosen: list[int] = []
    taken: set[str] = set()
    for i in found:
        # push_to_gateway and pushadd_to_gateway take the same arguments: one variant says what both do
        if len(chosen) < limit and _parameters(index.docs[i]) not in taken:
            chosen.append(i)
            taken.add(_parameters(index.docs[i]))
    return chosen


def _documented(doc: CorpusDoc) -> int:
    """How much a docstring says of what the API is for: its prose and examples (not its signature or arguments)."""
    prose = [b for b in doc.text.split("\n\n") if not b.startswith(("- `", "`"))]
    return sum(map(len, prose)) + sum(len(example) for example in doc.examples)


def _parameters(doc: CorpusDoc) -> str:
    """The parameter list of the signature a docstring opens with (``push_to_gateway(gateway, job, ...)``), or its name."""
    found = re.match(r"`[\w.]+(\(.*\))`", doc.text)
    return found.group(1) if found else doc.locator


# What a docstring says of its own API when users are not to call it: internal plumbing other APIs call
# (CUDAGraph.capture_end: "Typically, you shouldn't call `capture_end` yourself. Use `graph` ..."), or a base class
# (ProcessGroup, Placement). "Should not be instantiated directly" is not among them: its instances are used (EventList).
NOT_FOR_USERS = re.compile(r"\b(?:shouldn't|should not) call `[\w.]+` yourself|\bnot meant to be used directly"
                           r"|\bshould not be used (?:or called )?directly", re.I)


def _not_for_users(doc: CorpusDoc) -> bool:
    """Does the docstring say its own API is not for users to call (an internal step, a base class)?"""
    return doc.kind == "doc" and bool(NOT_FOR_USERS.search(doc.text))


def _use_instead(index: CorpusIndex, doc: CorpusDoc) -> list[int]:
    """The APIs a docstring that is not for users names in its place, in its own words after saying so ("Use `graph`
    or `make_graphed_callables`, which call `capture_end` internally"), each found from the API's own module up."""
    found = NOT_FOR_USERS.search(doc.text) if doc.kind == "doc" else None
    if not found:
        return []
    rest = doc.text[found.end():].split("\n\n", 1)[0]
    own = doc.locator.rsplit(".", 1)[-1]
    modules = doc.locator.split(".")[:-1]
    out: list[int] = []
    for name in dict.fromkeys(re.findall(r"`([A-Za-z_][\w.]*)`", rest)):
        if name == own or name.rsplit(".", 1)[-1] == own:
            continue
        for depth in range(len(modules), 0, -1):
            i = index.at(f"{'.'.join(modules[:depth])}.{name}")
            if i is not None:
                if i not in out and not _not_for_users(index.docs[i]):
                    out.append(i)
                break
    return out


def _is_option(doc: CorpusDoc) -> bool:
    return doc.kind == "doc" and bool(doc.source) and doc.source.endswith(SOURCE_SUFFIX)


def _name_coverage(index: CorpusIndex, doc: CorpusDoc, title_terms: list[str]) -> float:
    """Idf-weighted share of the title terms that the doc's own name (last locator component) says."""
    name = set(_name_terms(doc))
    total = sum(index.idf(t) for t in title_terms)
    return sum(index.idf(t) for t in title_terms if t in name) / total if total else 0.0


def _argument_mentions(doc: CorpusDoc, argument: str, wanted: list[str]) -> bool:
    """Does the doc's item for ``argument`` (``- `foreach` (bool): ...``) say one of the ``wanted`` terms?"""
    own = set(tokenize(argument))
    for block in doc.text.split("\n\n"):
        if block.startswith(f"- `{argument}`"):
            return bool((set(tokenize(block)) - own) & set(wanted))
    return False


def _same_words(terms_: set[str]) -> set[str]:
    """The other terms one word stands for once expanded (sync: synchron), so a word does not count twice."""
    out: set[str] = set()
    for t in terms_:
        for word, expansion in EXPANSIONS.items():
            forms = set(tokenize(word)) | set(tokenize(expansion))
            if t in forms:
                out |= forms
    return out


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
            elif doc.kind == "doc" and doc.locator.rsplit(".", 1)[-1] in NICHE_NAMES - said:
                weights[i] = NICHE_WEIGHT
            elif self.boost and doc.locator.startswith(self.boost):
                weights[i] = STEP0_BOOST
        return weights

    def _arguments(self, query: SectionQuery, prior: np.ndarray) -> dict[int, tuple[str, bool]]:
        """Documents with an argument the section names: written out (``foreach=True``) or as its rarest title word.

        "Fused optimizers" means the optimizers' ``fused`` argument; a common title word (tensor,
        device) names arguments everywhere and is not used this way.
        """
        found: dict[int, tuple[str, bool]] = {}
        wanted = [(name, True) for name in query.arguments]
        if query.title_terms and self.index.docs:
            rarest = max(query.title_terms, key=self.index.idf)
            wanted += [(name, False) for name in self.index.argument_names()
                       if "_" not in name and tokenize(name)[:1] == [rarest]]
        for name, written in wanted:
            hits = [i for i in self.index.documenting(name) if prior[i] > 0]
            if 0 < len(hits) <= MAX_ARGUMENT_DOCS:
                for i in hits:
                    if i not in found or (written and not found[i][1]):
                        found[i] = (name, written)
        return found

    def _detail_arguments(self, query: SectionQuery, prior: np.ndarray) -> dict[int, str]:
        """Docs with an argument named by a title word whose own item says one of the details.

        "Backend selection (inductor, cudagraphs, aot_eager)" in a torch.compile PART: torch.compile's
        `backend` argument ("inductor" is the default backend ...) is what the section is about.
        Only the PART's own API is trusted this way (see _relevant): ReduceLROnPlateau's `mode`
        says "max" and "reduce" too, and is no compilation mode.
        """
        found: dict[int, str] = {}
        if not query.detail_terms:
            return found
        for term in query.title_terms:
            for name in self.index.argument_names():
                if "_" in name or tokenize(name) != [term]:
                    continue
                hits = [i for i in self.index.documenting(name) if prior[i] > 0]
                if not 0 < len(hits) <= MAX_ARGUMENT_DOCS:
                    continue
                for i in hits:
                    if i not in found and _argument_mentions(self.index.docs[i], name, query.detail_terms):
                        found[i] = name
        return found

    def _relevant(self, query: SectionQuery, cand: Candidate) -> bool:
        """Does the (non-named) candidate document the section? Title coverage and phrase, or one of the exceptions."""
        # A config option's one-line comment says many words in passing ("mitigate the sync overhead"): it
        # documents a section only when the option's own name says most of the title (reorder_for_compute_comm_overlap).
        if cand.option and cand.name_cov < self.thresholds.option_name:
            return False
        if self._details_route(query, cand):
            return True
        # An argument the plan writes out (pin_memory) of an API named for the title's subject, whose own words say the
        # title too ("the data loader will copy Tensors into ... pinned memory" under "Data loading overlap"), is the
        # section's, whatever else the PART is about (FSDP's CPUOffloadPolicy takes a pin_memory too: not data loading).
        if cand.argument_written and set(_name_terms(cand.doc)) & set(query.title_terms) \
                and _argument_mentions(cand.doc, cand.argument or "", query.title_terms):
            return True
        if cand.context_cov < self.thresholds.context:
            return False
        # The PART's own API (topical) taking the argument the title names, whose text says a detail.
        return (cand.detail_argument is not None and cand.topical) or self._relevant_text(query, cand)

    def _details_route(self, query: SectionQuery, cand: Candidate) -> bool:
        """The details may name the thing itself ("Profiling checkpointing impact (memory timeline)").

        A doc that says every detail word, each pair together, and every title word that is not the
        PART's own topic (profiling) documents the section; so specific a match needs no topic words.
        """
        th = self.thresholds
        own = [t for t in query.title_terms if t not in query.topic_terms]
        if not own or len(query.detail_terms) < 2:
            return False
        if cand.detail_cov < th.title_all or cand.detail_phrase < th.details_phrase:
            return False
        return _coverage(self.index, cand.index, [(own, 1.0)]) >= th.title_all

    def _relevant_text(self, query: SectionQuery, cand: Candidate) -> bool:
        th = self.thresholds
        # A doc named after the title's subject (ZeroRedundancyOptimizer for "ZeRO ...") need not say the phrase.
        subject = bool(query.subjects) and all(
            w in cand.doc.text and set(tokenize(w)[:1]) <= set(tokenize(cand.doc.keywords)) for w in query.subjects)
        says_all = cand.title_cov >= th.title_all
        # Saying most of the title is not enough on its own: some of the plan's details must be said too
        # (GreenContext.create says "stream" and "concurrency", but nothing of profiling or timelines).
        says_most_words = cand.title_cov >= th.title_most and cand.overall_cov >= th.overall
        says_most = says_most_words and (not query.detail_terms or cand.detail_cov > 0)
        if (cand.phrase >= th.phrase or subject) and (says_all or says_most):
            return True
        # The title's words need not stand together when the API is named for them (torch.cuda.utilization for
        # "GPU utilization"), takes the argument the title means (fused=, "Fused optimizers"), or is squarely
        # about the PART's topic (torch.compile in a torch.compile PART): but then it must say every title word.
        if says_all and (cand.named_after or cand.topical or cand.argument is not None):
            return True
        # An API named for the title's subject need not say the activity the title leads with ("Measuring GPU
        # utilization": torch.cuda.utilization is the measurement) when it says the rest and some of the details.
        if cand.named_after and cand.activity_excused >= th.title_all and cand.detail_cov >= th.details_most:
            return True
        # The API squarely about the PART's topic (torch.utils.checkpoint.checkpoint in an activation checkpointing
        # PART) documents a section whose title it mostly says ("Memory-time tradeoff": "trades compute for memory").
        if cand.topical and says_most_words:
            return True
        # An argument the plan writes out (foreach=True) is what the section is about, if the API's own words
        # for that argument say something of the title ("whether foreach implementation of optimizer is used").
        return cand.argument_written and _argument_mentions(cand.doc, cand.argument or "", query.title_terms)

    def _named_route(self, doc: CorpusDoc, query: SectionQuery, core: set[str], said: set[str]) -> bool:
        """Is the API named for the section? Its own name and its summary say the title's distinctive word
        (set_sync_debug_mode, "sync points": "synchronizing operations") and something more of the section, in a
        module the section itself names (torch.cuda, "CPU-GPU"); or its name says two of the details and its
        summary one (set_float32_matmul_precision, "TF32": float32, matmul)."""
        if doc.kind != "doc":
            return False
        detail = set(query.detail_terms)
        name = name_terms(doc)
        # An abbreviation's words count only all together: DDP's name says "data parallel", not FSDP.
        name -= partial_expansions(name, f"{query.title} {query.details}")
        if len(name & detail) >= 2 and name & detail & said:
            return True
        # ... or two title words and a detail, each said by the summary too (LinearLR, "Learning rate scaling (linear
        # scaling rule, warmup)": "Decays the learning rate ... by linearly changing"): name and summary agree on both.
        # One title word is not enough: reset_max_memory_cached says "cache", and is no "Data caching" strategy.
        if len(name & core & said) >= 2 and name & detail & said:
            return True
        own = set(tokenize(doc.locator.rsplit(".", 1)[-1])) | expanded_terms(" ".join(tokenize(doc.locator.rsplit(".", 1)[-1])))
        top = max((self.index.idf(t) for t in core), default=0.0)
        # The title's most distinctive word, said by the name and (in any of its forms: sync, synchronizing) the summary.
        rare = {t for t in core & own if self.index.idf(t) >= top and ({t} | _same_words({t})) & said}
        # ... and something more of the section: of its details, where it has any (is_current_stream_capturing says
        # "CUDA stream" and nothing of "default stream, non-blocking streams"; swap_in_optimizer_params_and_state
        # says "optimizer state" and nothing of "ZeRO-Offload, CPU offloading").
        more = set(query.title_terms) | detail if not detail else detail
        if not rare or not ((own | said) & more) - rare - _same_words(rare):
            return False
        section = f"{query.title} {query.details}"
        return bool(module_words(doc)) and foreign_module(doc, expanded_terms(section), section.lower()) is None

    def rank(self, query: SectionQuery, limit: int) -> SectionResult:
        """The old filler: BM25 candidates kept by the lexical rules of :meth:`_relevant` (see ``fill``)."""
        return self._rank(query, limit)[0]

    def fill(self, query: SectionQuery, limit: int, judge: RelevanceJudge,
             packages: set[str] = frozenset(), part_text: str = "") -> SectionResult:
        """The filler: the lexical candidates plus the nearest subjects by embedding, each judged on what it is about.

        A candidate the lexical rules accept still needs the judge's lower bar (what it is about must
        be near the section, not only a word of it somewhere); one they reject may fill the section when
        its own subject says it (name and summary) and the embedding agrees. Below that, nothing.
        """
        old, candidates, prior = self._rank(query, limit, keep_all=True)
        result = SectionResult(query)
        if not candidates and judge.embedder is None:
            return result
        lexical = {c.index: c for c in candidates}
        ordered = [c.index for c in candidates if c.named or c.relevant]
        ordered += [c.index for c in candidates[:JUDGED_CANDIDATES]]
        ordered += [i for i in judge.nearest(query, DENSE_CANDIDATES) if prior[i] > 0]
        # APIs named for the section (set_sync_debug_mode for "sync points", Event.elapsed_time for "timing"):
        # a short docstring that says little else may rank low by words and still be the section's answer.
        wanted = set(judge.core(query)) | set(query.detail_terms)
        by_words = self.index.score(query.weights)
        ordered += [i for i in named_for(self.index, wanted, set(judge.core(query)), by_words)[:NAME_CANDIDATES] if prior[i] > 0]
        # A title naming a library and nothing else (PART 15's "Prometheus + Grafana dashboards") is about that library:
        # its top-level APIs that say a word of the details (GPU metrics, custom metrics) are its candidates, and fill it.
        library = titled_library(set(judge.core(query)), list(self.index.info.get("packages") or {}))
        titled = _library_answers(self.index, library, set(query.detail_terms), limit) if library else []
        pool = list(dict.fromkeys([*ordered, *titled]))
        verdicts = judge.judge(query, pool, {c.index for c in candidates if c.named})
        # An API the plan writes out in full (torch.no_grad, torch.utils.checkpoint.checkpoint) is what the section
        # is about, whatever its words: the plan's author named it. A bare name (StreamReader) may mean another's.
        exact = {c.index for c in candidates if c.named and any(
            "." in ref and ref in (c.doc.locator, *c.doc.keywords.split()) for ref in query.refs)}
        part_terms = expanded_terms(part_text) if part_text else set()
        part_lower = part_text.lower()
        core = set(judge.core(query))
        section_terms = set(query.title_terms) | set(query.detail_terms)
        section_terms |= abbreviated(section_terms)  # "automatic mixed precision" is AMP: autocast says it
        topic = set(query.topic_terms)
        foreign_modules: set[int] = set()
        for i, verdict in zip(pool, verdicts):
            doc = self.index.docs[i]
            if verdict.named or i in exact:
                continue
            said = name_terms(doc) & section_terms
            # The topic's own API (checkpoint in "Activation Checkpointing"): its name is nothing but the PART's words.
            own = set(tokenize(doc.locator.rsplit(".", 1)[-1].replace("_", " "))) if doc.kind == "doc" else set()
            topic_own = bool(own) and own <= topic
            # What an API is about is first its name (or its summary sentence) and its module: a passage that shares the
            # section's words while neither says anything of it, or that lives in a module the PART never mentions, is
            # about something else.
            if doc.kind == "doc" and not said and not topic_own and not (core and core <= summary_terms(doc)):
                verdict.score -= judge.weights.off_name
            # An API whose own name spells out the name the title writes (ZeroRedundancyOptimizer, "ZeRO memory
            # optimization") is what the plan calls it, whichever module holds it.
            spelled = _spells_subject(doc, query)
            off_module = bool(part_text) and not spelled and foreign_module(doc, part_terms, part_lower) is not None
            if off_module:
                verdict.score -= judge.weights.off_module
                foreign_modules.add(i)
            verdict.by_name = spelled or self._named_route(doc, query, core, summary_terms(doc))
        # Another accelerator's copy (Tensor.ipu beside Tensor.cuda) comes after the others, as in the lexical ranking.
        ranked = sorted(zip(pool, verdicts), key=lambda pv: (not pv[1].named, bool(prior[pv[0]] < 1.0), -pv[1].score))
        detail = set(query.detail_terms)
        # Deprecated APIs whose replacement is among the candidates (clip_grad_norm beside clip_grad_norm_).
        live = [self.index.docs[i].locator for i in pool if not self.index.docs[i].deprecated]
        replaced = {i for i in pool if self.index.docs[i].deprecated
                    and any(loc != self.index.docs[i].locator and loc.startswith(self.index.docs[i].locator) for loc in live)}
        named_modules = [(i, self.index.docs[i].locator.rsplit(".", 1)[0]) for i in exact]
        families: set[str] = set()
        best: float | None = None
        instead_of: set[int] = set()  # chosen in place of an API whose docs say to use them (below)
        for i, verdict in ranked:
            if i in instead_of:
                continue
            doc = self.index.docs[i]
            cand = lexical.get(i) or Candidate(index=i, doc=doc, bm25=0.0, title_cov=0.0, overall_cov=0.0)
            cand.verdict = verdict
            family = _family(doc.locator)
            niche = _is_option(doc) or prior[i] < 1.0
            # An API named for the section's subject (torch.cuda.Event for "CUDA event recording") counts as found by the rules.
            found = bool(cand.relevant) or (_named_after(doc, judge.core(query)) and verdict.title >= NAMED_AFTER_TITLE)
            if i in exact:
                verdict.named = True  # the plan wrote its full path
            # The plan writes its path or the argument (foreach=), or the title's word names an argument of a doc
            # that says the whole title (fused, "Fused optimizers"; not one of set_logs' forty, fusion, for "Kernel fusion"). Found
            # through the details only (an argument a detail names, every detail word said): it must say the title too.
            strong = i in exact or (bool(cand.relevant) and cand.argument is not None
                                    and (cand.argument_written or cand.title_cov >= self.thresholds.title_all)
                                    and (doc.text.count("\n- `") < HUB_ARGUMENTS or cand.argument_written))
            if not strong and cand.relevant and (cand.detail_argument is not None or self._details_route(query, cand)):
                strong = verdict.title >= judge.weights.title
            # An API whose name and summary say a rare title word (set_sync_debug_mode, "sync points") or two of the
            # details (set_float32_matmul_precision for "TF32") is found by its name (see _named_route). So is a method of a class already chosen whose own name says the section (Event.elapsed_time, "timing"), or
            # an API beside one the plan names that does what its details say (memory_summary, "snapshots":
            # _record_memory_history, _dump_snapshot): found by its name.
            own_name = set(tokenize(doc.locator.rsplit(".", 1)[-1])) - NAME_VERBS
            # (the method's own name must say what its class's does not: FSDP's shard_* methods add nothing to "FSDP")
            class_terms = set(tokenize(family.rsplit(".", 1)[-1]))
            own_more = own_name - class_terms - abbreviated(class_terms)  # fsdp_modules says nothing FSDP does not
            by_name = verdict.by_name or (family != doc.locator and family in families and bool(own_more & section_terms))
            by_name = by_name or (doc.kind == "doc" and any(
                doc.locator.startswith(module + ".") and (name_terms(doc) | summary_terms(doc)) & (detail - name_terms(self.index.docs[n]))
                for n, module in named_modules))
            # An API whose own name says the whole subject of the title (ZeroRedundancyOptimizer, "ZeRO optimization").
            # (its own name: not a method's, which its class's says, nor a config option's)
            whole_name = (len(core) >= 2 and family == doc.locator and not _is_option(doc) and core <= own_name | expanded_terms(
                " ".join(own_name)))
            by_name = (by_name or whole_name) and verdict.title >= judge.weights.name_title
            ok = judge.accept(verdict, lexical_ok=found, niche=niche, strong=strong, by_name=by_name)
            # A docstring whose own first sentence says the title's whole subject (two words or more: vmap's
            # "vectorizing ... operations"), which the lexical rules found too, is about it whatever its name says;
            # not from a module the PART never says (FSDP's MixedPrecision under a GPU-utilization "Mixed precision").
            # ... and so is one whose own name says that whole subject too (OutOfMemoryError: "Exception raised when
            # device is out of memory", under "OOM debugging"): name and summary agree, whatever the embedding.
            summary_says = (not ok and doc.kind == "doc" and family == doc.locator and not niche and len(core) >= 2
                            and i not in foreign_modules and core <= summary_terms(doc)
                            and verdict.score >= judge.weights.summary)
            by_summary = summary_says and ((found and verdict.dense >= judge.weights.summary_dense)
                                           or (whole_name and verdict.title >= judge.weights.name_title))
            ok = ok or by_summary
            # A paragraph of its own labelled with the title's whole subject ("2. Fault tolerance: monitors workers
            # and ... restarts everyone", under "Fault tolerance") is about it, whatever the rest of the doc is about:
            # the section quotes that paragraph.
            headed = not ok and verdict.headed is not None and doc.kind == "doc" and not niche
            if headed:
                ok, cand.only = True, verdict.headed
            # ... and in a section about a library its title names, that library's most documented APIs that say what
            # the details ask for (Gauge, Info, write_to_textfile under "GPU metrics, custom metrics").
            of_library = not ok and i in titled
            ok = ok or of_library
            why = ("plan names it" if verdict.named else "strong" if strong else "by its summary" if by_summary
                   else "by its labelled paragraph" if headed else "of the library the title names" if of_library
                   else "by name" if by_name
                   else "lexical rules" if found else "judge") if ok else "below the bar"
            if query.missing:
                ok, why = False, "out of corpus"  # about something the corpus never mentions (arr-coc-0-1, DALI): even a named API is not it
            if foreign(doc, packages) and not (verdict.named and doc.locator.rsplit(".", 1)[-1] in query.refs
                                                and ACRONYM.fullmatch(doc.locator.rsplit(".", 1)[-1])):
                ok, why = False, "foreign package"  # the PART names its libraries (asyncio.run): another library's docstring is off topic
            if ok and doc.deprecated and not verdict.named and i in replaced:
                ok, why = False, "deprecated"  # a deprecated alias (clip_grad_norm) is not what to use: its replacement is
            if ok and not verdict.named and _not_for_users(doc):
                # Its own docstring says to call another API (capture_end: "Use `graph` or `make_graphed_callables`"):
                # those fill the section in its place, the passage that was on topic pointing at them.
                for j in _use_instead(self.index, doc):
                    other = self.index.docs[j]
                    if (len(result.chosen) < limit and _family(other.locator) not in families
                            and not any(c.index == j or _similar(other, c.doc) for c in result.chosen)):
                        instead = lexical.get(j) or Candidate(index=j, doc=other, bm25=0.0, title_cov=0.0, overall_cov=0.0)
                        instead.verdict = judge.judge(query, [j])[0]
                        instead.why = f"the docs of {doc.locator} say to use it"
                        result.chosen.append(instead)
                        families.add(_family(other.locator))
                        instead_of.add(j)
                ok, why = False, "not for users"
            # An API far below the section's best passage is padding, found by its name or not (a person's knowledge file
            # is not held to it); a method of a chosen class whose own name says the section (Event.elapsed_time) is not.
            beside = (by_name and family in families) or of_library
            if ok and not verdict.named and not strong and not beside and doc.kind == "doc" and best is not None and verdict.score < best - judge.weights.margin:
                ok, why = False, "far below the best"
            # A method whose own name says the section (Event.elapsed_time for "timing") is quoted beside its class.
            own = family != doc.locator and bool(own_name & section_terms)
            duplicate = (family in families and not own) or any(_similar(doc, c.doc) for c in result.chosen)
            if ok and not duplicate and len(result.chosen) < limit:
                result.chosen.append(cand)
                families.add(family)
                best = verdict.score if best is None else max(best, verdict.score)
            else:
                result.rejected.append(cand)
                why = ("duplicate" if duplicate else "limit") if ok else why
            cand.why = why
        return result

    def _rank(self, query: SectionQuery, limit: int, keep_all: bool = False):
        index, th = self.index, self.thresholds
        result = SectionResult(query)
        if not len(index):
            return result, [], np.zeros(0, dtype=np.float32)
        prior = self.prior(query)
        scores = index.score(query.weights) * prior
        named: list[int] = []
        for ref in query.refs:
            hits = [i for i in index.named(ref) if prior[i] > 0]
            hits.sort(key=lambda i: -prior[i])  # torch.cuda.memory_summary before torch.xpu.memory_summary
            if hits and hits[0] not in named:
                named.append(hits[0])
        arguments = self._arguments(query, prior)
        detail_arguments = self._detail_arguments(query, prior)
        top = np.argsort(-scores, kind="stable")[:CANDIDATES].tolist()
        # The details alone are a second way in: "memory timeline" finds export_memory_timeline, which the
        # whole query ranks below many docs that say "profiling" (see the details route in _relevant).
        by_details = []
        if len(query.detail_terms) > 1:
            detail_scores = index.score({t: 1.0 for t in query.detail_terms}) * prior
            by_details = [i for i in np.argsort(-detail_scores, kind="stable")[:DETAIL_CANDIDATES].tolist()
                          if detail_scores[i] > 0]
        order = list(dict.fromkeys([*named, *top, *by_details, *sorted(arguments, key=lambda i: -scores[i]),
                                    *sorted(detail_arguments, key=lambda i: -scores[i])]))
        groups = [(query.title_terms, 2.0), (query.detail_terms, 1.0)]
        # A product the details name but the corpus never mentions (LAMB, Megatron-LM) counts as missed,
        # and so does a title word it never says (Nsight): no doc can say it.
        title_unmatched = len(query.title_unknown) * index.max_idf()
        unmatched = len(query.detail_missing) * index.max_idf() + 2 * title_unmatched
        activity_unmatched = index.max_idf() * sum(1 for w in query.title_unknown if tokenize(w)[:1] != [query.activity])
        candidates = []
        for i in order:
            if scores[i] <= 0 and i not in named:
                continue
            doc = index.docs[i]
            argument, written = arguments.get(i, (None, False))
            candidates.append(Candidate(
                index=i, doc=doc, bm25=float(scores[i]),
                title_cov=_coverage(index, i, [(query.title_terms, 1.0)], title_unmatched)
                if query.title_terms or title_unmatched else 1.0,
                overall_cov=_coverage(index, i, groups, unmatched),
                context_cov=_coverage(index, i, [(query.context_terms, 1.0)]) if query.context_terms else 1.0,
                phrase=_phrase(doc, query.title_terms), named=i in named, argument=argument,
                argument_written=written,
                topical=bool(query.topic_terms) and _named_after(doc, query.topic_terms)
                and _coverage(index, i, [(query.topic_terms, 1.0)]) >= th.title_all
                and _phrase(doc, query.topic_terms) >= th.phrase,
                named_after=bool(query.title_terms) and _named_after(doc, query.title_terms),
                detail_cov=_coverage(index, i, [(query.detail_terms, 1.0)]) if query.detail_terms else 1.0,
                detail_phrase=_phrase(doc, query.detail_terms) if len(query.detail_terms) > 1 else 0.0,
                activity_excused=_coverage(index, i, [([t for t in query.title_terms if t != query.activity], 1.0)],
                                           activity_unmatched) if query.activity else 0.0,
                option=_is_option(doc), detail_argument=detail_arguments.get(i),
                name_cov=_name_coverage(index, doc, query.title_terms) if _is_option(doc) else 1.0,
            ))
        candidates.sort(key=lambda c: -c.rank)
        families: set[str] = set()
        # A section about something the corpus never mentions (arr-coc-0-1, DALI) gets only the APIs it names.
        out_of_corpus = bool(query.missing)
        for cand in candidates:
            relevant = cand.named or (not out_of_corpus and self._relevant(query, cand))
            cand.relevant = relevant
            family = _family(cand.doc.locator)
            duplicate = family in families or any(_similar(cand.doc, c.doc) for c in result.chosen)
            if relevant and not duplicate and len(result.chosen) < limit:
                result.chosen.append(cand)
                families.add(family)
            else:
                result.rejected.append(cand)
        return result, candidates, prior


def _argument_item(doc: CorpusDoc, query: SectionQuery) -> tuple[str, str] | None:
    """The argument of ``doc`` that section ``query`` is about: its name is the title's subject, no more and no
    less (``persistent_workers`` for "Persistent workers"; not ``num_workers`` for "Worker strategies"), or the
    plan writes it out (prefetch_factor=2) and its name says a title word ("Prefetching strategies")."""
    core = set(RelevanceJudge.core(query))
    written = set(query.arguments)
    for block in doc.text.split("\n\n"):
        found = re.match(r"- `([A-Za-z_][A-Za-z0-9_]*)`", block)
        if not found:
            continue
        name = found.group(1)
        own = set(tokenize(name.replace("_", " ")))
        if (core and core <= own <= set(query.title_terms)) or (name in written and own & core):
            return name, block
    return None


def _only(text: str, block: str) -> str:
    """A docstring cut to its leading blocks up to its summary (signature, summary) and ``block``."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    lead = []
    for b in blocks:
        if b == block or b.lstrip().startswith(("-", "*")):
            break
        lead.append(b)
        if not (b.startswith("`") and b.endswith("`")):
            break  # the summary
    return "\n\n".join([*lead, block])


def _argument_of_a_sibling(index: CorpusIndex, results: list[SectionResult]) -> None:
    """A section left empty takes a docstring another section of the same PART chose, for the argument it is about
    (DataLoader's ``persistent_workers`` for "Persistent workers", when "DataLoader optimization" chose DataLoader):
    the writer quotes that argument's own words there, never a block the file quoted already."""
    chosen: dict[str, Candidate] = {}
    for result in results:
        for cand in result.chosen:
            chosen.setdefault(cand.doc.locator, cand)
    for result in results:
        if result.chosen or result.query.missing:
            continue
        for cand in chosen.values():
            if cand.doc.kind != "doc":
                continue
            found = _argument_item(cand.doc, result.query)
            if found is not None:
                result.chosen.append(Candidate(index=cand.index, doc=cand.doc, bm25=cand.bm25, title_cov=0.0,
                                               overall_cov=0.0, argument=found[0], relevant=True, verdict=cand.verdict,
                                               only=found[1]))
                break


def _source_title(doc: CorpusDoc) -> str:
    if doc.kind == "doc":
        if doc.source and doc.source.endswith(SOURCE_SUFFIX):  # options documented by comments (kb.corpus.options)
            return f"{doc.title}, {doc.source}"
        return f"{doc.title}, {doc.source} docstring" if doc.source else doc.title
    return doc.title


def _part_text(part: Part) -> str:
    """Everything a PART says about its subject: title, searches, sections and their details."""
    return " ".join([part.title, *part.searches, *(f"{s.title} {s.details or ''}" for s in part.sections)])


def _context_text(part: Part) -> str:
    return " ".join([part.title, *part.searches])


class LocalResearcher:
    """A Researcher (kb.engine.types) over the workspace's local corpus (kb.corpus)."""

    name = "local"

    def __init__(self, workspace=None, *, index: CorpusIndex | None = None, passages_per_section: int = 3,
                 thresholds: Thresholds | None = None, progress: Progress | None = None,
                 loader: Callable[[], CorpusIndex] | None = None,
                 filler: str = "judged", decisions: Decisions | None = None):
        if index is None and workspace is None and loader is None:
            raise ValueError("LocalResearcher needs a workspace, an index or a loader")
        self.workspace = workspace
        self.passages_per_section = passages_per_section
        self.thresholds = thresholds or Thresholds()
        self._index = index
        self._loader_owned = index is None  # an index given by the caller (a test, a benchmark) is never reloaded
        self._loader = loader or (lambda: load_corpus(workspace, progress=progress))
        self._lock = threading.Lock()
        self._done: dict[tuple, Research] = {}  # a PART's research, for the writer of a later PART (kb.engine.offline.owners)
        if filler not in FILLERS:
            raise ValueError(f"filler must be one of {FILLERS}")
        self.filler = filler  # "lexical": the old filler (rules on BM25 candidates), kept for the benchmark
        self._plan_parts: list[str] = []  # what each PART of the plan says (use_plan): the libraries it is about
        self._plan_packages: dict[tuple[str, ...], set[str]] = {}
        self._plan_targets: list[tuple[int | None, str]] = []  # (batch, target) of each PART of the plan (use_plan)
        # A reviewer's verdicts (curation.toml), read per plan (use_plan) unless given: a benchmark passes none.
        self._decisions_given = decisions
        self.decisions = decisions if decisions is not None else Decisions()
        self._plan_name: str | None = None

    def use_plan(self, plan) -> None:
        """Research the PARTs of ``plan`` (kb.plan.model.Plan) in its scope: a PART that names a library (PART 15's
        "Prometheus") keeps its plan's own library (PyTorch, named by most of its PARTs) as its own too."""
        self._plan_parts = [_part_text(p) for p in plan.parts]
        self._plan_packages = {}
        self._plan_targets = [(p.batch, p.target) for p in plan.parts if p.target]
        self._plan_name = plan_key(plan)
        if self._decisions_given is None and self.workspace is not None:
            self.decisions = load_decisions(self.workspace.root)
        # The knowledge tree is part of the corpus: a later batch reads the files the earlier ones just wrote,
        # as a fresh run would, not the copies an earlier run left (the index loads again; its caches make that cheap).
        if self._loader_owned:
            with self._lock:
                self._index = None

    def packages_of(self, part: Part, index: CorpusIndex) -> set[str]:
        """The libraries a PART is about (kb.engine.offline.relevance.mentioned_packages): those it names and, when
        it names any, its plan's own, which at least half of the plan's PARTs name (a library only two PARTs name,
        DeepSpeed, is theirs: its docstrings stay foreign to a PART on memory that names PyTorch). None when it
        names none (then no library is foreign to it)."""
        indexed = list(index.info.get("packages") or {})
        named = mentioned_packages(_part_text(part), indexed)
        if named and self._plan_parts:
            key = tuple(indexed)
            if key not in self._plan_packages:
                counts = Counter(p for text in self._plan_parts for p in mentioned_packages(text, indexed))
                self._plan_packages[key] = {p for p, n in counts.items() if 2 * n >= len(self._plan_parts)}
            named |= self._plan_packages[key]
        return named

    def written_with(self, part: Part) -> list[str]:
        """The knowledge files ``part``'s research must not read: its own, and those its plan's PARTs of the same or
        a later batch write (in this run, or left by an earlier run that a fresh one would not have). Without them a
        file's sources depend on what was on disk before the run, and two runs of the same plan disagree."""
        own = [part.target] if part.target else []
        if part.batch is None:
            return own
        return list(dict.fromkeys(own + [t for b, t in self._plan_targets if b is None or b >= part.batch]))

    def corpus(self) -> CorpusIndex:
        """The corpus index, loaded (or built) once, on first use; concurrent callers wait for it."""
        with self._lock:
            if self._index is None:
                self._index = self._loader()
            return self._index

    def describe(self) -> str:
        """What the corpus holds, in words, for the knowledge file's overview."""
        info = self.corpus().info
        parts = [f"{source_label(name, version)} docstrings" for name, version in (info.get("packages") or {}).items()]
        if info.get("knowledge_files"):
            parts.append(f"{info['knowledge_files']} knowledge files")
        if info.get("folder_files"):
            parts.append(f"{info['folder_files']} files from the configured folders")
        return ", ".join(parts) or "an empty corpus"

    async def research(self, part: Part, context: list[ContextDoc]) -> Research:
        await asyncio.to_thread(self.corpus)  # the index loads once, off the event loop
        # Ranking is CPU work (numpy, tokenizing candidates): keep it off the event loop other PARTs share.
        return await asyncio.to_thread(self.research_part, part, context)

    def rank_sections(self, part: Part, context: list[ContextDoc], index: CorpusIndex) -> list[SectionResult]:
        # Corpus locators are workspace paths: the knowledge root's prefix as the layout sets it.
        prefix = self.workspace.knowledge_prefix if self.workspace is not None else "knowledge/"
        exclude = tuple(f"{prefix}{target}" for target in self.written_with(part))
        boost = tuple(f"{prefix}{doc.path.rstrip('/')}" for doc in context if doc.path)
        ranker = SectionRanker(index, self.thresholds, exclude=exclude, boost=boost)
        context_text = _context_text(part)
        sections = [(s.number, s.title, s.details) for s in part.sections] or [(0, part.title, " ".join(part.searches))]
        judge = RelevanceJudge(index, load_embedder()) if self.filler == "judged" else None
        packages = self.packages_of(part, index)
        results = []
        for number, title, details in sections:
            query = section_query(index, number, title, details or "", context_text, part.title)
            if judge is None:
                results.append(ranker.rank(query, self.passages_per_section))
            else:
                results.append(ranker.fill(query, self.passages_per_section, judge, packages, _part_text(part)))
        if judge is not None:
            _argument_of_a_sibling(index, results)
        if self._plan_name and len(self.decisions):
            for result in results:
                self._curate(result, part.number, index)
        return results

    def _curate(self, result: SectionResult, part: int, index: CorpusIndex) -> None:
        """A reviewer's verdicts on this section (kb.curation) over research's: a rejected passage never fills it, an
        accepted one does, first; research's own picks follow up to the section's limit."""
        accepted, rejected = self.decisions.for_section(self._plan_name, part, result.query.number)
        for cand in result.chosen + result.rejected:
            if cand.doc.locator in rejected:
                cand.why = "rejected in curation.toml"
        dropped = [c for c in result.chosen if c.doc.locator in rejected]
        chosen = [c for c in result.chosen if c.doc.locator not in rejected]
        picks: list[Candidate] = []
        for decision in accepted:
            i = index.at(decision.source)
            if i is None or any(c.doc.locator == decision.source for c in picks):
                continue  # research_sync says which accepted sources the corpus does not hold
            mine = next((c for c in chosen if c.index == i), None)
            if mine is None:  # research left it out: the reviewer's choice, said so in the file
                mine = Candidate(index=i, doc=index.docs[i], bm25=0.0, title_cov=0.0, overall_cov=0.0,
                                 why="accepted in curation.toml", curated=decision)
            picks.append(mine)
        rest = [c for c in chosen if c not in picks]
        room = max(0, self.passages_per_section - len(picks))
        result.chosen = picks + rest[:room]
        result.rejected = dropped + rest[room:] + [c for c in result.rejected if c not in picks]

    def linkable(self, part: Part, number: int, quoted: list[tuple[str, str, str]]) -> list[str]:
        """Which passages other files quote answer section ``number`` of ``part``: ``quoted`` holds (locator, title
        and details of the section that quotes it); the answer is their locators, best first (none off topic)."""
        section = next((s for s in part.sections if s.number == number), None)
        if section is None or not quoted:
            return []
        index = self.corpus()
        query = section_query(index, number, section.title, section.details or "", _context_text(part), part.title)
        if query.missing:
            return []  # about something the corpus never mentions (arr-coc-0-1): no passage answers it
        judge = RelevanceJudge(index, load_embedder())
        core = judge.core(query)
        topic = set(query.topic_terms)
        subject = [t for t in core if t not in topic] or core
        weight = sum(index.idf(t) for t in subject)
        packages = self.packages_of(part, index)
        _accepted, rejected = (self.decisions.for_section(self._plan_name, part.number, number) if self._plan_name
                               else ([], set()))
        pool: list[int] = []
        for locator, title, details in quoted:
            i = index.at(locator)
            if i is None or i in pool or locator in rejected or foreign(index.docs[i], packages):
                continue
            there = section_query(index, 0, title, details, "")
            said = set(there.title_terms) | set(there.detail_terms)
            if weight and sum(index.idf(t) for t in subject if t in said) / weight >= LINK_SECTION:
                pool.append(i)
        verdicts = judge.judge(query, pool)

        def says_subject(i: int, v) -> float:
            # "Profiling training loop" in a PART on the training loop asks for profiling: the title's share is
            # taken of its subject, as the quoting section's is.
            said = judge.block_terms(i)[v.block]
            return max(v.title, sum(index.idf(t) for t in subject if t in said) / weight if weight else 0.0)

        ranked = sorted(((v.score, i) for i, v in zip(pool, verdicts)
                         if says_subject(i, v) >= LINK_TITLE and v.score >= LINK_SCORE), key=lambda sv: -sv[0])
        return [index.docs[i].locator for _score, i in ranked]

    def research_part(self, part: Part, context: list[ContextDoc]) -> Research:
        """:meth:`research_sync` on the corpus, once per PART (its number, target, sections and Step 0 paths) per run."""
        key = (part.number, part.batch, part.target, part.title, tuple(part.searches),
               tuple((s.number, s.title, s.details) for s in part.sections), tuple(doc.path for doc in context))
        found = self._done.get(key)
        if found is None:
            found = self.research_sync(part, context, self.corpus())
            self._done.setdefault(key, found)
        return self._done[key]

    def research_sync(self, part: Part, context: list[ContextDoc], index: CorpusIndex) -> Research:
        """The synchronous core of :meth:`research`."""
        warnings = list(index.info.get("warnings") or [])
        by_section: dict[int, list[Passage]] = {}
        sources: list[SourceRef] = []
        ids: dict[str, int] = {}
        indexed = list(index.info.get("packages") or {})
        named = mentioned_packages(_part_text(part), indexed)
        unindexed = named - set(indexed) if named and not named & set(indexed) else set()
        candidates: dict[int, list[Passage]] = {}
        for result in self.rank_sections(part, context, index):
            query = result.query
            passages = []
            warnings += self._unheld(part.number, query.number, index)
            for cand in result.chosen:
                passage = self._passage(cand, query, index)
                if passage is None:
                    continue
                passages.append(passage)
                if passage.locator not in ids:
                    ids[passage.locator] = len(sources) + 1
                    sources.append(SourceRef(id=ids[passage.locator], title=_source_title(cand.doc), kind=cand.doc.kind,
                                             locator=passage.locator))
            if not passages and not query.missing:
                near: list[Candidate] = []
                for cand in sorted((c for c in result.rejected if c.why == "below the bar" and c.verdict is not None),
                                   key=lambda c: -c.verdict.score):
                    # Another accelerator's copy of a docstring (torch.Stream beside torch.cuda.Stream) is one offer.
                    if len(near) < NEAR_MISSES and not any(_similar(cand.doc, n.doc) for n in near):
                        near.append(cand)
                offered = [p for p in (self._passage(c, query, index) for c in near) if p is not None]
                if offered:
                    candidates[query.number] = offered
            by_section[query.number] = passages
            if not passages:
                why = f"the corpus never mentions {', '.join(query.missing)}" if query.missing else "no passage was relevant enough"
                if unindexed:
                    why = (f"the PART is about {', '.join(sorted(unindexed))}, which the corpus does not index: "
                           "add it to [corpus].packages in kb.toml")
                warnings.append(found_nothing(query.number, query.title, why))
        return Research(by_section=by_section, sources=sources, warnings=warnings, candidates=candidates)

    @staticmethod
    def _passage(cand: Candidate, query: SectionQuery, index: CorpusIndex) -> Passage | None:
        """The excerpt of a candidate a section would quote, or None when it has nothing to quote."""
        doc = cand.doc
        if cand.only is not None:  # its signature, summary and that item: the other blocks are another section's
            doc = dataclasses.replace(doc, text=_only(doc.text, cand.only), examples=[])
        weights = dict(query.weights)
        text, _best = excerpt(doc, weights, index.idf, names=frozenset(query.refs))
        if not text:
            return None
        return Passage(kind=doc.kind, locator=doc.locator, title=doc.title, text=text,
                       score=round(cand.rank if not cand.named else cand.bm25, 4),
                       examples=pick_examples(doc, weights, index.idf), query=query.text,
                       curated_by=(cand.curated.by or "unsigned") if cand.curated else None,
                       curated_why=cand.curated.why if cand.curated else None)

    def _unheld(self, part: int, section: int, index: CorpusIndex) -> list[str]:
        """Warnings for sources curation.toml accepts for a section that the corpus does not hold."""
        if not self._plan_name or not len(self.decisions):
            return []
        accepted, _rejected = self.decisions.for_section(self._plan_name, part, section)
        return [f"section {section}: curation.toml accepts {d.source}, which the corpus does not hold "
                "(check the name, or add its package to [corpus] packages in kb.toml)"
                for d in accepted if index.at(d.source) is None]


__all__ = ["LocalResearcher", "SectionRanker", "Thresholds"]
