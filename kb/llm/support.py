"""Does the passage a sentence cites say what the sentence says? kb's check of a written text, sentence by sentence.

A *factual* sentence (prose, not a heading, code, a question or a note on what research lacks)
must cite at least one passage, and the passages it cites must support it:

- every number it states appears in them (``73 percent`` needs a 73 there);
- every API name it uses appears in them (code spans, dotted names, snake_case and CamelCase words);
- enough of its content words are theirs (stemmed, stop words left out): the lexical check, measured
  against a labelled set of (sentence, passage) pairs in tests/test_llm_support.py.

The verdicts come back as plain reasons: the writer gets them as feedback once, and what is still
unsupported after that is removed (:func:`keep_supported`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kb.corpus.tokenize import terms
from kb.mdblocks import parse_blocks

# [3], [1][2], [1, 2]: the citation forms kb's writers use.
CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# A sentence ends at . ! or ? (with its citations, which belong to it) before a space and a capital,
# a digit, a code span, emphasis, a quote or a parenthesis.
_BOUNDARY = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])*)\s+(?=[A-Z0-9`*_\"'(])")
_NUMBER = re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)*(?![A-Za-wyz0-9_])")  # 73, 1,000, 2.5 and 2.5x
_DOTTED = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+\b")
_SNAKE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+\b")
_CAMEL = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b")
_ALNUM = re.compile(r"\b[A-Za-z]+[0-9]+[A-Za-z0-9]*\b")  # FP8, bf16, H100, sm_90 (a model or format name)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LIST_PREFIX = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+|\s*>\s*)")
# Notes on what research lacks are not claims about the world: they need no citation.
_GAP_NOTE = re.compile(
    r"\b(passages?|research|sources?)\b[^.]{0,60}?\b(?:(?:do(?:es)? not|don't|doesn't|did not|didn't) (?:say|cover|"
    r"mention|describe|document|include|contain|address|explain|give|show)|found (?:no|nothing)|says? nothing)\b|"
    r"\b(?:no|none of the)\s+(?:passages?|sources?)\b|"
    r"\bnot (?:covered|mentioned|described|documented) (?:by|in) the (?:passages?|research|sources?)\b", re.I)
_PYTHON_WORDS = frozenset({"True", "False", "None", "self", "def", "return", "import", "from", "for", "in", "if", "else",
                           "and", "or", "not", "with", "as", "lambda", "print", "class", "is", "while", "pass"})

MIN_OVERLAP = 0.5  # share of a sentence's content words its passages must hold (see the labelled set's numbers)
MIN_WORDS = 4  # shorter prose (a label, "See below.") states no fact


@dataclass
class Sentence:
    text: str
    cites: list[int]
    factual: bool


@dataclass
class Verdict:
    sentence: str
    cites: list[int]
    reason: str | None  # None: supported (or not a factual sentence)

    @property
    def supported(self) -> bool:
        return self.reason is None


@dataclass
class Review:
    """The verdicts on every factual sentence of a text."""

    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def failing(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.supported]

    @property
    def reasons(self) -> list[str]:
        return [v.reason for v in self.failing if v.reason]


def _mask_code(text: str) -> str:
    """``text`` with code spans blanked (same length), so their dots split no sentence."""
    return _CODE_SPAN.sub(lambda m: "`" * len(m.group(0)), text)


def split_sentences(text: str) -> list[str]:
    """The sentences of one paragraph, each with the citations that follow its full stop."""
    masked = _mask_code(text)
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(masked):
        end = match.end(2)
        out.append(text[start:end].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def citations(sentence: str) -> list[int]:
    """The passage numbers a sentence cites, in order, once each (code spans are not citations)."""
    masked = _mask_code(sentence)
    return list(dict.fromkeys(int(n) for group in CITE.findall(masked) for n in re.findall(r"\d+", group)))


def is_factual(sentence: str) -> bool:
    """Whether a prose sentence states something that needs a source."""
    bare = CITE.sub("", _CODE_SPAN.sub(lambda m: m.group(2), sentence)).strip()
    if len(re.findall(r"[A-Za-z][\w.-]*", bare)) < MIN_WORDS or bare.endswith("?"):
        return False
    # A note on what the passages lack states nothing itself; one that names a number or an API does.
    return not (_GAP_NOTE.search(bare) and not _numbers(bare) and not api_names(sentence))


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(CITE.sub(" ", text))}


def api_names(sentence: str) -> list[str]:
    """Code-like names a sentence uses: identifiers inside code spans, dotted, snake_case and CamelCase names."""
    names: list[str] = []
    for match in _CODE_SPAN.finditer(sentence):
        names += [w for w in _IDENT.findall(match.group(2)) if len(w) >= 3 and w not in _PYTHON_WORDS]
    prose = _CODE_SPAN.sub(" ", sentence)
    names += _DOTTED.findall(prose) + _SNAKE.findall(prose) + _CAMEL.findall(prose) + _ALNUM.findall(prose)
    return list(dict.fromkeys(names))


def _name_present(name: str, haystack: str) -> bool:
    if name in haystack or (_ALNUM.fullmatch(name) and name.lower() in haystack.lower()):
        return True
    if "." in name:  # torch.utils.checkpoint.checkpoint: "from torch.utils.checkpoint import checkpoint" says it too
        parts = name.split(".")
        return all(p in haystack for p in parts[-2:])
    return False


def judge(sentence: str, passages: list[str], min_overlap: float = MIN_OVERLAP) -> str | None:
    """Why the passages do not support the sentence (None: they do). ``passages``: the cited texts, code included."""
    haystack = "\n".join(passages)
    short = sentence if len(sentence) <= 120 else sentence[:117] + "..."
    cited = "".join(f"[{n}]" for n in citations(sentence)) or "its passages"
    missing_numbers = sorted(_numbers(sentence) - _numbers(haystack), key=lambda n: sentence.find(n))
    if missing_numbers:
        return f'the sentence "{short}" states {", ".join(missing_numbers)}, which {cited} does not contain'
    missing_names = [n for n in api_names(sentence) if not _name_present(n, haystack)]
    if missing_names:
        return f'the sentence "{short}" names {", ".join(missing_names)}, which {cited} does not contain'
    words = terms(CITE.sub(" ", sentence))
    if words:
        have = set(terms(haystack))
        shared = sum(1 for w in words if w in have)
        if shared / len(words) < min_overlap:
            return (f'the sentence "{short}" is not what {cited} says (it shares {shared} of its {len(words)} '
                    f"content words)")
    return None


def review(text: str, passages: Mapping[int, str], *, judge_fn: Callable[[str, list[str]], str | None] = judge) -> Review:
    """Verdicts on every factual sentence of a Markdown text, against the passages (by number) it may cite."""
    out = Review()
    for sentence in prose_sentences(text):
        if not sentence.factual:
            continue
        short = sentence.text if len(sentence.text) <= 120 else sentence.text[:117] + "..."
        if not sentence.cites:
            out.verdicts.append(Verdict(sentence.text, [], f'the sentence "{short}" states a fact but cites no passage: '
                                                          "cite the passage that says it, or leave the sentence out"))
            continue
        unknown = [n for n in sentence.cites if n not in passages]
        if unknown:
            out.verdicts.append(Verdict(sentence.text, sentence.cites, f'the sentence "{short}" cites '
                                        f"{''.join(f'[{n}]' for n in unknown)}, which is not one of the passages given"))
            continue
        out.verdicts.append(Verdict(sentence.text, sentence.cites,
                                    judge_fn(sentence.text, [passages[n] for n in sentence.cites])))
    return out


def _paragraph_lines(text: str) -> tuple[list[str], set[int]]:
    """The text's lines with each paragraph joined onto its first line, and the lines that are not prose."""
    lines = text.split("\n")
    skip: set[int] = set()
    joined = list(lines)
    tokens = parse_blocks(text)
    for i, token in enumerate(tokens):
        if not token.map:
            continue
        start, end = token.map
        if token.type in ("fence", "code_block", "html_block", "heading_open", "hr"):
            skip.update(range(start, end))
        elif token.type == "paragraph_open" and end - start > 1:
            joined[start] = " ".join([lines[start].rstrip(), *(lines[k].strip() for k in range(start + 1, end))])
            for k in range(start + 1, end):
                joined[k] = None  # type: ignore[call-overload]
    for n, line in enumerate(lines):
        if line.lstrip().startswith("|"):  # a table row: cells, not sentences
            skip.add(n)
    return joined, skip


def prose_sentences(text: str) -> list[Sentence]:
    """Every prose sentence of a Markdown text (headings, code, tables and HTML left out)."""
    joined, skip = _paragraph_lines(text)
    out: list[Sentence] = []
    for n, line in enumerate(joined):
        if line is None or n in skip or not line.strip():
            continue
        body = _LIST_PREFIX.sub("", line)
        for sentence in split_sentences(body):
            out.append(Sentence(sentence, citations(sentence), is_factual(sentence)))
    return out


def keep_supported(text: str, failing: set[str]) -> tuple[str, int]:
    """``text`` without the sentences in ``failing`` (a list item left empty goes too); and how many went."""
    if not failing:
        return text, 0
    joined, skip = _paragraph_lines(text)
    removed = 0
    out: list[str] = []
    for n, line in enumerate(joined):
        if line is None:
            continue
        if n in skip or not line.strip():
            out.append(line)
            continue
        prefix_match = _LIST_PREFIX.match(line)
        prefix = prefix_match.group(1) if prefix_match else ""
        kept = []
        for sentence in split_sentences(line[len(prefix):]):
            if sentence in failing:
                removed += 1
            else:
                kept.append(sentence)
        if kept:
            out.append(prefix + " ".join(kept))
    result = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
    return result + ("\n" if result else ""), removed
