"""Is a passage about a planned section? The filler's judge, on top of the lexical ranker's candidates.

A docstring that shares a word with a section title is not thereby about it: DDP's
docstring says "synchronization points" in a warning, and is about data parallelism.
So the judge scores each candidate on its **best block** (its summary, a paragraph or an
argument item, led by the API's name in words), two ways at once:

- **lexical**: the idf-weighted share of the section's own terms (title twice, details
  once; activity words like "Avoiding" left out) that the block says;
- **dense**: the cosine of static sentence embeddings (kb.corpus.embed) of the block and
  the section, which tells "checkpoint" (saving) from "checkpointing" (recomputation).

Each way a candidate was found has its own bar (``Weights``): the plan names the API; the
lexical rules of the old filler accept it; or only the judge finds it (the embedding's
nearest subjects). The block must also say some of the title itself, and a candidate far
below the section's best is padding. Below the bar nothing fills: the section is left
empty. The weights were set on the labelled set tests/relevance_labels.jsonl
(bench/bench_relevance.py prints the old and new filler's precision and recall on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from kb.corpus.documents import CorpusDoc
from kb.corpus.propose import ALIASES
from kb.corpus.tokenize import tokenize
from kb.engine.offline.query import EXPANSIONS, FILLER, SectionQuery, expand

SUMMARY_CHARS = 400
MAX_BLOCKS = 12  # a long docstring's later blocks are rarely what a section is about
# How a title leads into its subject ("Avoiding sync points"): not what a passage must say. Profiling,
# measuring, debugging and monitoring are subjects in themselves ("Profiling stream concurrency").
ACTIVITY_WORDS = frozenset(tokenize(
    "avoiding eliminating identifying tuning reducing improving handling understanding using choosing selecting "
    "comparing"))


@dataclass
class Weights:
    """How the judge's signals add up, and the score a passage needs to fill a section.

    A document's score is its best block's: the share of the section's terms the block (with the
    API's name) says plus the cosine of the block's embedding with the section's. Set on the
    labelled set (bench/bench_relevance.py).
    """

    dense: float = 1.0  # weight of the cosine beside the term share
    named: float = 0.6  # the plan names this API: it fills unless its best block is this far off
    lexical: float = 1.2  # the lexical rules (old filler) found it
    summary: float = 0.5  # ... and its summary sentence says every term of the title's subject (two or more)
    summary_dense: float = 0.3  # ... and the embedding agrees this far (a loss's "numerically stable" is not AMP's)
    threshold: float = 1.35  # found only by the judge (the embedding's nearest, or rejected by the rules)
    niche: float = 1.6  # a config option or another accelerator's copy, found only by the judge
    title: float = 0.3  # the best block says at least this share of the title's own terms (unknown words count)
    margin: float = 0.2  # within a section, no more than this below the best accepted score
    name_title: float = 0.25  # ... when its best block says this share of the title (the name is the rest of the evidence)
    name: float = 0.65  # the API's own name says a title term (or two of the details): found by its name
    off_name: float = 0.35  # the API's own name says nothing of the section (hook_with_zero_step under "Overlapping ...")
    off_module: float = 0.45  # its module is a subject the PART never says (torch.distributed.fsdp in a GPU-utilization PART)


def summary(doc: CorpusDoc) -> str:
    """The doc's first prose block (not its signature, an argument item or a bold label)."""
    for block in doc.text.split("\n\n"):
        block = block.strip()
        if not block or block.startswith(("-", "**", "*", ">", "|")):
            continue
        if block.startswith("`") and block.endswith("`") and block.count("`") == 2:
            continue
        return block[:SUMMARY_CHARS]
    return ""


def name_words(doc: CorpusDoc) -> str:
    """An API's name, and its class's for a method, as words: ``set_sync_debug_mode`` -> "set sync debug mode"."""
    if doc.kind != "doc":
        return doc.title
    parts = doc.locator.split(".")
    tail = parts[-2:] if len(parts) > 1 and parts[-2][:1].isupper() else parts[-1:]
    words = []
    for part in tail:
        words += re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", part)
    return " ".join(words)


# Words an API name is made of that say how it is called, not what it is about.
NAME_VERBS = frozenset(tokenize("get set is has enable disable register create make reset init new from to as with"))
# Module path components that hold many subjects (torch.utils, torch.nn.functional): never a topic of their own.
CONTAINERS = frozenset({"torch", "utils", "nn", "functional", "modules", "backends", "api", "core", "common",
                        "config"})  # a config module holds its parent's options: its name says no subject
# A module named for the device says what the plan calls the GPU.
MODULE_SYNONYMS = {"cuda": ("cuda", "gpu"), "optim": ("optim",), "cudnn": ("cudnn", "gpu"),
                   # torch.fx holds program graphs and the passes over them: a PART on "graph mode" says it.
                   "fx": ("fx", "graph")}


def expanded_terms(words: str) -> set[str]:
    return set(tokenize(expand(words)))


def abbreviated(said: set[str]) -> set[str]:
    """Terms of the abbreviations whose spelled-out words are all in ``said`` ("automatic mixed precision": amp, autocast)."""
    out: set[str] = set()
    for word, expansion in EXPANSIONS.items():
        spelled = set(tokenize(expansion)) - set(tokenize(word))
        long = {t for t in spelled if t in said}
        if len(long) >= 2 and len(long) >= len(spelled) - 1:
            out |= set(tokenize(f"{word} {expansion}"))
    return out


def name_terms(doc: CorpusDoc) -> set[str]:
    """What an API's own name (and its class's, for a method) says, as terms: ``set_sync_debug_mode`` ->
    {sync, synchron, debug, mode}; verbs like get/set left out."""
    if doc.kind != "doc":
        return set()
    words = name_words(doc)
    raw = doc.locator.rsplit(".", 1)[-1].replace("_", " ")  # float32 stays one word: set_float32_matmul_precision
    # ... and an abbreviation in it says what it stands for (is_bf16_supported: bfloat16)
    return (expanded_terms(words) | set(tokenize(words)) | expanded_terms(raw) | set(tokenize(raw))) - NAME_VERBS - FILLER


def partial_expansions(said: set[str], text: str) -> set[str]:
    """Terms of abbreviations ``text`` writes (FSDP) that ``said`` holds only part of, the abbreviation not among
    them: DDP's "data parallel" is not FSDP's "fully sharded data parallel"."""
    out: set[str] = set()
    whole: set[str] = set()  # words of an abbreviation said in full (DDP's, where the text writes DDP too)
    for word in set(re.findall(r"[A-Za-z0-9]+", text)):
        expansion = EXPANSIONS.get(word.lower())
        if not expansion:
            continue
        own = set(tokenize(word))
        spelled = set(tokenize(expansion)) - own
        if own & said or spelled <= said:
            whole |= spelled
        else:
            out |= spelled & said
    return out - whole


def module_words(doc: CorpusDoc) -> list[str]:
    """The module path between the package and the API (torch.distributed.fsdp.MixedPrecision: distributed, fsdp)."""
    if doc.kind != "doc":
        return []
    parts = doc.locator.split(".")[1:-1]
    while parts and parts[-1][:1].isupper():  # a method's class is its name, not its module
        parts.pop()
    return [p.strip("_") for p in parts if p.strip("_") and p.strip("_").lower() not in CONTAINERS]


def _spelled_out(module: str, part_terms: set[str]) -> bool:
    """The module's name holds an abbreviation whose every spelled-out word the PART says (lr_scheduler in a PART
    on "learning rate scaling")."""
    for word in tokenize(module.replace("_", " ")):
        expansion = EXPANSIONS.get(word)
        if expansion and set(tokenize(expansion)) - {word} <= part_terms:
            return True
    return False


def foreign_module(doc: CorpusDoc, part_terms: set[str], part_text: str) -> str | None:
    """The first module of the API's path that the PART never says (torch.ao.quantization in a TorchScript PART)."""
    words = module_words(doc)
    said = [any(s in part_text for s in MODULE_SYNONYMS.get(w.lower(), (w.lower(),)))
            or bool(set(tokenize(w.replace("_", " "))) & part_terms) or _spelled_out(w, part_terms) for w in words]
    # A module the PART names by its abbreviation (FSDP: torch.distributed.fsdp) makes the modules holding it its own too.
    named = [said[n] and w.lower() in EXPANSIONS for n, w in enumerate(words)]
    for n, word in enumerate(words):
        if not said[n] and not any(named[n + 1:]):
            return word
    return None


def subject(doc: CorpusDoc) -> str:
    """What a document is about, in a sentence or two: its name in words and its summary."""
    head = name_words(doc)
    if doc.kind == "doc" and len(doc.locator.split(".")) > 2:
        head = f"{doc.locator.split('.')[-2]} {head}" if not doc.locator.split(".")[-2][:1].isupper() else head
    return f"{head}. {summary(doc)}".strip()


def section_text(query: SectionQuery) -> str:
    """The section as a sentence for the embedding: its title twice (it says what the section is), then details."""
    return f"{query.title}. {query.title}. {query.details}".strip()


def _core(query: SectionQuery) -> list[str]:
    """Title terms less the activity words ("Avoiding ...", "Profiling ..."): what the section is about."""
    core = [t for t in query.title_terms if t not in ACTIVITY_WORDS and t not in FILLER]
    return core or list(query.title_terms)


# A block that opens with a short label of its own ("2. Fault tolerance: monitors workers ...",
# "**Fault-tolerance**: ..."): the label says what the block is about.
_LABEL = re.compile(r"^(?:[-*]\s+|\d+\.\s+)?\*{0,2}([A-Za-z][A-Za-z0-9 /-]{2,60}?)\*{0,2}\s*:\*{0,2}\s+(.+)", re.S)
NOT_LABELS = frozenset(tokenize("see note warning example examples returns return args arguments raises usage"))
LABEL_WORDS = 8  # ... and says something after it (a bare heading before dropped code says nothing)


def label_terms(block: str) -> set[str]:
    """The terms of the block's own label (``2. Fault tolerance: ...``), or none when it has none."""
    found = _LABEL.match(block)
    if not found or len(found.group(2).split()) < LABEL_WORDS:
        return set()
    said = tokenize(found.group(1))
    return set() if not said or said[0] in NOT_LABELS else set(said)


def blocks(doc: CorpusDoc, limit: int = MAX_BLOCKS) -> list[str]:
    """The doc's quotable blocks (summary, paragraphs, argument items), each cut to a few sentences."""
    out = []
    for block in doc.text.split("\n\n"):
        block = block.strip()
        if not block or (block.startswith("`") and block.endswith("`") and block.count("`") == 2):
            continue
        out.append(block[:SUMMARY_CHARS])
        if len(out) >= limit:
            break
    return out or [doc.title]


@dataclass
class Verdict:
    score: float
    coverage: float  # share of the section's terms its best block says (with the API's name)
    dense: float  # cosine of the best block with the section
    named: bool
    block: int = 0  # which block (see ``blocks``) is the best
    title: float = 0.0  # share of the title's own terms (less activity words) that block says
    headed: str | None = None  # a block whose own label is the title's whole subject (two words or more)
    by_name: bool = False  # the API is named for the section (set by the filler: research.SectionRanker._named_route)

    @property
    def features(self) -> dict:
        return {"score": round(self.score, 3), "coverage": round(self.coverage, 3), "dense": round(self.dense, 3),
                "named": self.named, "block": self.block, "title": round(self.title, 3)}


class RelevanceJudge:
    """Scores (section, document) pairs on the document's best block; ``accept`` says whether it may fill."""

    def __init__(self, index, embedder=None, weights: Weights | None = None):
        self.index = index
        self.embedder = embedder
        self.weights = weights or Weights()
        # Per index, not per judge: a judge is made per PART, the docs' blocks are the same for all.
        if getattr(index, "_judge_cache", None) is None:
            index._judge_cache = {}
        self._block_terms, self._block_vectors, self._block_labels = index._judge_cache.setdefault(
            embedder is None, ({}, {}, {}))

    def _doc_blocks(self, i: int) -> tuple[list[set[str]], np.ndarray | None]:
        if i not in self._block_terms:
            doc = self.index.docs[i]
            name = name_words(doc)
            own = blocks(doc)
            texts = [f"{name}. {b}" for b in own]
            # PARTs of a batch are judged in threads sharing this cache: the terms, which say "cached", are stored
            # last, so no thread reads them without the vectors (it would score that doc by words alone).
            if self.embedder is not None:
                self._block_vectors[i] = self.embedder.embed(texts)
            self._block_labels[i] = [(label_terms(b), b) for b in own]
            self._block_terms[i] = [set(tokenize(t)) for t in texts]
        return self._block_terms[i], self._block_vectors.get(i)

    def judge(self, query: SectionQuery, docs: list[int], named: set[int] = frozenset()) -> list[Verdict]:
        """A verdict per document index, in order."""
        core = _core(query)
        details = [t for t in query.detail_terms if t not in core]
        weighted = [(t, 2.0 * self.index.idf(t)) for t in core] + [(t, self.index.idf(t)) for t in details]
        total = sum(w for _t, w in weighted)
        # A title word the corpus never says (Nsight, checklist) is part of what the section is about: no block says it.
        title_total = sum(self.index.idf(t) for t in core) + len(query.title_unknown) * self.index.max_idf()
        q = self.embedder.embed([section_text(query)])[0] if self.embedder is not None else None
        out = []
        for i in docs:
            terms, vectors = self._doc_blocks(i)
            cover = np.array([sum(w for t, w in weighted if t in said) / total if total else 0.0 for said in terms])
            # Without an embedder the term share counts twice: the same scale, lexical evidence alone.
            dense = vectors @ q if vectors is not None else cover
            combined = cover + self.weights.dense * dense
            k = int(np.argmax(combined))
            title = sum(self.index.idf(t) for t in core if t in terms[k]) / title_total if title_total else 0.0
            # A label says the whole subject when it says every core term (two or more) and little else.
            headed = next((b for said, b in self._block_labels[i] if set(core) <= said and len(said) <= len(core) + 2),
                          None) if len(core) >= 2 else None
            out.append(Verdict(score=float(combined[k]), coverage=float(cover[k]), dense=float(dense[k]),
                               named=i in named, block=k, title=title, headed=headed))
        return out

    def block_terms(self, i: int) -> list[set[str]]:
        """The terms each of document ``i``'s blocks says (with the API's name), as the verdicts count them."""
        return self._doc_blocks(i)[0]

    @staticmethod
    def core(query: SectionQuery) -> list[str]:
        """The title terms a relevant passage is about (activity words like "Avoiding" left out)."""
        return _core(query)

    def nearest(self, query: SectionQuery, k: int) -> list[int]:
        """The ``k`` documents whose subjects are nearest the section by embedding (none without an embedder)."""
        if self.embedder is None or not len(self.index.docs):
            return []
        vectors = subject_vectors(self.index, self.embedder)
        sims = vectors @ self.embedder.embed([section_text(query)])[0]
        return np.argsort(-sims, kind="stable")[:k].tolist()

    def accept(self, verdict: Verdict, *, lexical_ok: bool = False, niche: bool = False, strong: bool = False,
               by_name: bool = False) -> bool:
        """May the judged document fill the section? Each way it was found has its own bar.

        ``strong``: the plan writes the API's full path, or the lexical rules found it by a specific route
        (an argument the plan names, every word of the details said together): accepted.
        """
        w = self.weights
        if strong:
            return True
        if verdict.named:
            return verdict.score >= w.named
        if by_name and verdict.score >= w.name and verdict.title >= w.name_title:
            return True  # found by its name (the filler's name routes): the name is part of the evidence
        if verdict.title < w.title:
            return False
        if lexical_ok:
            return verdict.score >= w.lexical
        return verdict.score >= (w.niche if niche else w.threshold)


_DOTTED_ROOT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\.[A-Za-z_]")


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def mentioned_packages(text: str, indexed: list[str]) -> set[str]:
    """Python packages a PART is about: roots of the dotted names it writes (``asyncio.run``) that are
    importable, and indexed package names it says as words in any case ("asyncio I/O", "DeepSpeed", "PyTorch")."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    # "PyTorch" is torch and "DeepSpeed" deepspeed: a PART naming a second library still names the first.
    lower = {w.lower() for w in words}
    lower |= {ALIASES[w] for w in lower if w in ALIASES}
    found = {p for p in indexed if p in words or p.lower() in lower}
    for root in set(_DOTTED_ROOT.findall(text)):
        if root in found or not root.isidentifier():
            continue
        if root in indexed or _importable(root):
            found.add(root)
    return found


def foreign(doc: CorpusDoc, packages: set[str]) -> bool:
    """A package docstring from a library the PART does not name, when it names some (torch.istft in an asyncio PART)."""
    return bool(packages) and doc.kind == "doc" and doc.locator.split(".", 1)[0] not in packages


def subject_vectors(index, embedder) -> np.ndarray:
    """Every document's subject embedding, computed once per index (cached on it)."""
    cached = getattr(index, "_subject_vectors", None)
    if cached is None or cached.shape[0] != len(index.docs):
        cached = embedder.embed([subject(d) for d in index.docs])
        index._subject_vectors = cached
    return cached


def named_for(index, wanted: set[str], core_of: set[str] = frozenset(), scores_by_words=None) -> list[int]:
    """Documents whose API name says some of ``wanted`` terms, best first (title terms in ``core_of`` count double,
    rare terms more than common ones; ties by ``scores_by_words``, the section's BM25 scores)."""
    table = getattr(index, "_name_table", None)
    if table is None:
        table = {}
        for i, doc in enumerate(index.docs):
            for t in name_terms(doc):
                table.setdefault(t, []).append(i)
        index._name_table = table
    scores: dict[int, float] = {}
    for t in wanted:
        w = index.idf(t) * (2.0 if t in core_of else 1.0)
        for i in table.get(t, ()):
            scores[i] = scores.get(i, 0.0) + w
    tie = (lambda i: -float(scores_by_words[i])) if scores_by_words is not None else (lambda i: len(index.docs[i].locator))
    return sorted(scores, key=lambda i: (-scores[i], tie(i)))



def summary_terms(doc: CorpusDoc) -> set[str]:
    """The terms of a doc's summary sentence (its first prose block)."""
    return set(tokenize(summary(doc)))
