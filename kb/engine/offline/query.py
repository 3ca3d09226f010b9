"""What a planned section asks the corpus: weighted terms, the names it must find, the APIs it names.

A section title says what the section is about, its details refine it and the
PART's search queries give the surrounding topic; the three get falling weights.
Generic plan words ("fundamentals", "optimization") are left out of the relevance
test, and a product name in the title that the corpus never mentions (DALI,
arr-coc-0-1) means the corpus cannot document the section at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.corpus.tokenize import tokenize

TITLE_WEIGHT = 1.0
DETAIL_WEIGHT = 0.6
CONTEXT_WEIGHT = 0.3

# Words plans put in section titles that say how, not what; matching them proves nothing.
FILLER = frozenset(tokenize(
    "fundamentals fundamental basics basic overview introduction analysis strategies strategy techniques "
    "technique considerations workflow best practices practice tips guide advanced approach approaches patterns "
    "specific impact simulate deep dive optimization optimizations optimize optimizing pytorch torch api apis "
    "deep-dive performance effective efficient tuning 2023 2024 2025 key core common py debugging debug "
    "integration integrating issues pitfalls pitfall gotchas mistakes"
))
# Abbreviations readers write and docstrings spell out.
EXPANSIONS = {
    "oom": "out of memory", "amp": "automatic mixed precision autocast", "fsdp": "fully sharded data parallel",
    # "tradeoff" -> "trade": docs say "trades compute for memory"; an "off" matched alone is no evidence.
    "ddp": "distributed data parallel", "lr": "learning rate", "tradeoff": "trade", "tradeoffs": "trade",
    "ffn": "feed forward", "mlp": "feed forward", "h2d": "host to device", "d2h": "device to host",
    "bf16": "bfloat16", "fp16": "float16 half", "fp32": "float32", "tp": "tensor parallel",
    "percentage": "percent", "percentages": "percent",
    # Docstrings say "synchronizing operations" and "TensorFloat32" where plans say "sync points" and "TF32".
    "sync": "sync synchronization",
    # Docstrings say "the copy will be asynchronous" where plans say "async"; DCE is a compiler pass's short name.
    "async": "async asynchronous", "dce": "dead code elimination",
    # TF32 is TensorFloat-32, the mode float32 matmuls run in on Tensor Cores (set_float32_matmul_precision).
    "tf32": "tf32 tensorfloat32 float32 matmul",
}
# Abbreviations that are only one when written so: ZeRO (DeepSpeed's Zero Redundancy Optimizer) is not "zero".
CASED_EXPANSIONS = {"ZeRO": "zero redundancy optimizer"}
_NAME = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")
_IDENT = re.compile(r"\b(?:[a-z]+_[a-z0-9_]+|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)\b")
ACRONYM = re.compile(r"(?<![\w.])[A-Z]{3,}(?![\w.])")  # LAMB, SGD: an API named so is the one the plan means, whatever its library
_KWARG = re.compile(r"\b([a-z][a-z0-9_]*)=")  # foreach=True, prefetch_factor=2: an argument the plan names


@dataclass
class SectionQuery:
    number: int
    title: str
    details: str
    weights: dict[str, float]  # BM25 term weights
    title_terms: list[str]  # what a relevant passage must (mostly) mention
    detail_terms: list[str]
    missing: list[str] = field(default_factory=list)  # names in the title the corpus never mentions
    detail_missing: list[str] = field(default_factory=list)  # ... and in the details
    context_terms: list[str] = field(default_factory=list)  # the PART's topic: its title and searches
    subjects: list[str] = field(default_factory=list)  # the names in the title, as written (ZeRO, DataLoader)
    refs: list[str] = field(default_factory=list)  # APIs named in the plan (torch.cuda.memory_summary, DataLoader)
    arguments: list[str] = field(default_factory=list)  # argument names the plan writes out (pin_memory, foreach=)
    topic_terms: list[str] = field(default_factory=list)  # the PART's own title: what every section is part of
    text: str = ""  # the query as words, for Passage.query
    activity: str | None = None  # the title's leading gerund ("Measuring GPU utilization": measur), a title term
    title_unknown: list[str] = field(default_factory=list)  # title words the corpus never says (Nsight, pitfalls)



def expand(text: str) -> str:
    """Abbreviations replaced by what they stand for, in place (so word order still means something)."""
    return re.sub(r"[A-Za-z0-9]+",
                  lambda m: CASED_EXPANSIONS.get(m.group()) or EXPANSIONS.get(m.group().lower(), m.group()), text)


def _name_like(word: str) -> bool:
    """A product or project name rather than an English word: DALI, DeepSpeed, A100, arr-coc-0-1."""
    if re.fullmatch(r"\d+(st|nd|rd|th|x|k|m|b|gb|mb|%)?", word, re.I):
        return False
    upper = sum(c.isupper() for c in word)
    has_digit = any(c.isdigit() for c in word)
    has_alpha = any(c.isalpha() for c in word)
    return upper >= 2 or (has_digit and has_alpha) or ("-" in word and has_digit)


def _known_terms(index, text: str) -> list[str]:
    """The text's known, non-filler terms; a word the corpus knows whole is not also counted by its pieces."""
    out: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z0-9_]*|\d+[A-Za-z]+", expand(text)):
        tokens = tokenize(word)
        if not tokens:
            continue
        chosen = [tokens[0]] if len(tokens) > 1 and index.known(tokens[0]) else tokens  # tokens[0]: the whole word
        out += [t for t in chosen if t not in FILLER and index.known(t)]
    return list(dict.fromkeys(out))


def missing_names(index, text: str) -> list[str]:
    """Name-like words of ``text`` the corpus does not contain: one of its own terms is unknown ("arr-coc-0-1" is
    not known for "arr", a variable name some docstring uses)."""
    out = []
    for word in _NAME.findall(text):
        if not _name_like(word):
            continue
        parts = [t for t in tokenize(re.sub(r"[-.]", " ", word)) if not t.isdigit()]
        if parts and not all(index.known(t) for t in parts) and not set(parts) <= FILLER:
            out.append(word)
    return out


def api_refs(text: str) -> list[str]:
    """Identifiers the plan names: dotted paths, snake_case and CamelCase words, and acronyms an API may be named
    by exactly ("LAMB, LARS optimizers": bitsandbytes.optim.LAMB)."""
    found = _DOTTED.findall(text) + _IDENT.findall(text) + ACRONYM.findall(text)
    return list(dict.fromkeys(found))


def argument_names(text: str) -> list[str]:
    """Argument names a plan writes out: snake_case words and ``name=`` keywords."""
    found = re.findall(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b", text) + _KWARG.findall(text)
    return list(dict.fromkeys(found))


def section_query(index, number: int, title: str, details: str, context: str, topic: str = "") -> SectionQuery:
    """The weighted query for one planned section, given the PART's searches and title as ``context``.

    ``topic`` is the PART's title alone: a passage squarely about it may document a section
    whose title it does not say word for word (see the researcher's topic rule).
    """
    shown, said = title, details
    if not _known_terms(index, title) and not unknown_words(index, title) and details:
        # A title of plan words only ("Common pitfalls", "Performance considerations"): its details say what it is about.
        title, details = details, ""
    title_terms = _known_terms(index, title)
    detail_terms = [t for t in _known_terms(index, details) if t not in title_terms]
    weights: dict[str, float] = {}
    for t in tokenize(f"{title} {expand(title)}"):
        weights[t] = TITLE_WEIGHT
    for t in tokenize(f"{details} {expand(details)}"):
        weights.setdefault(t, DETAIL_WEIGHT)
    for t in tokenize(f"{context} {expand(context)}"):
        weights.setdefault(t, CONTEXT_WEIGHT)
    weights = {t: w for t, w in weights.items() if index.known(t)}
    query = SectionQuery(
        number=number, title=shown, details=said, weights=weights, title_terms=title_terms,
        detail_terms=detail_terms, missing=missing_names(index, title), refs=api_refs(f"{title} {details}"),
        detail_missing=missing_names(index, details), context_terms=_known_terms(index, context),
        subjects=[w for w in _NAME.findall(title) if _name_like(w)],
        arguments=argument_names(f"{title} {details}"), topic_terms=_known_terms(index, topic) if topic else [],
        text=" ".join(x for x in (shown, said) if x), title_unknown=unknown_words(index, title),
    )
    query.activity = _activity(title, [*title_terms, *(t for w in query.title_unknown for t in tokenize(w)[:1])])
    return query


def unknown_words(index, text: str) -> list[str]:
    """Words of ``text`` (not filler) none of whose terms the corpus knows: "Nsight", "pitfalls", "Alerting".

    A title word the corpus never says is part of the section it cannot document: the researcher
    counts it as missed, so "Nsight Systems" is not documented by any doc that says "system".
    """
    out = []
    for word in re.findall(r"[A-Za-z][A-Za-z0-9_]*|\d+[A-Za-z]+", expand(text)):
        tokens = tokenize(word)
        if tokens and not set(tokens) <= FILLER and not any(index.known(t) for t in tokens):
            out.append(word)
    return list(dict.fromkeys(out))


def _activity(title: str, title_terms: list[str]) -> str | None:
    """The title's leading gerund as a term (known or not), when the title says more: "Profiling stream concurrency"."""
    first = re.match(r"\s*([A-Za-z]+ing)\b", title)
    if not first or len(title_terms) < 2:
        return None
    term = (tokenize(first.group(1)) or [None])[0]
    return term if term in title_terms else None
