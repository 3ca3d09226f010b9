"""A section's digest, read out of its passages: what each API is, when to use it, its signature.

Everything here is the docstring's own words, cut at sentence boundaries: the signature block,
the sentence of the summary that says what the API does (its one-line purpose), and the sentences of its other quoted blocks
that say when or why to use it (``useful``, ``should``, ``faster``, ``memory`` ...) or that say the
section's own words. kb adds no claim; it only chooses and orders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.corpus.tokenize import terms
from kb.engine.offline.excerpts import GAP

MAX_PURPOSE = 320
NO_PURPOSE = "(its docstring has no sentence saying what it does)"
MAX_SIGNATURE = 120
SENTENCES_PER_API = 2
ANSWER_CHARS = 900  # of the argument a section is about ("Compilation modes": `mode`), this much of its item is quoted
# Words with which a docstring tells its reader when, why or why not to use something.
_CUE = re.compile(r"\b(use(?:ful|s|d)?|when|should|recommend\w*|prefer\w*|instead|avoid\w*|faster|slower|speed\w*|"
                  r"overhead|perform\w*|memory|reduc\w*|improv\w*|efficien\w*|trade\w*|must|only|unless|benefit\w*|"
                  r"expensive|cheap\w*|costly|overlap\w*|synchroni\w*)\b", re.I)
_ABBREVIATION = re.compile(r"(\b(e\.g|i\.e|etc|vs|cf|approx|resp|Fig|No|al)\.|\b[A-Za-z]\.)$")
# A full stop before a capital; or a list flattened into one line ("backend to be used - "inductor" is ...").
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*(\"'\[])|\s+-\s+(?=[A-Z`\"'])")
_MARKER = re.compile(r"^([*-]\s+|\d{1,2}\.\s+)+")  # a list's bullet or number ("2. Fault tolerance: ...")
_ENUMERATOR = re.compile(r"\d{1,2}\.")
_ITEM = re.compile(r"^- `([^`]+)`\s*(\([^)]*\))?\s*:?\s*")
_ARGUMENT = re.compile(r"^[A-Za-z_][\w.]*$")  # an argument's name; `\eta_t` is a formula's symbol
# A summary sentence that is no purpose: a caution, or the lead-in to code or a list the cell cannot show.
_NOT_PURPOSE = re.compile(r"^\W*(warning|note|tip|caution|deprecated|example)\b", re.I)
# A sentence that leans on the one before it ("This behavior ...", "In these cases ..."): alone, it misleads.
_ANAPHORA = re.compile(r"^(this|these|that|those|such|it|its|they|as such|in particular|in (?:this|these|that|such) "
                       r"cases?|otherwise|however|also|then|therefore|thus|hence|consequently|as a result)\b", re.I)
# ... and one that leans on the block before it even where it opens its own ("This" there names the API itself).
_CONNECTIVE = re.compile(r"^(as such|in particular|in (?:this|these|that|such) cases?|otherwise|however|also|then|"
                         r"therefore|thus|hence|consequently|as a result)\b", re.I)
# "An instance `scaler` of `GradScaler`.": it names a variable later sentences use, and says nothing itself.
_NAMING = re.compile(r"^An? (?:instance|object) `(\w+)` of `[\w.]+`\.?$")
# No sentence: a value list's entry ("`"oom"`: Out-of-memory events"), a bare call, a linter's directive.
_NO_SENTENCE = re.compile(r"^`[^`]+`:\s|^[\w.]+\(.*\)\.?$|\b(pyrefly|noqa|pylint|mypy|type): *ignore\b|"
                          r":\s*<?https?://\S+$")  # ... or the lead-in to a link: "To register one: https://..."
# A purpose never leans on a sentence before it ("It allreduces those tensors."); "This hook ..." names the API.
_LEANING_PURPOSE = re.compile(r"^(it|its|it's|they|these|those|such|that|as such|in particular|otherwise|however|"
                              r"also|then)\b", re.I)
_BELOW = re.compile(r"\bsee (?:the )?(?:examples?|notes?|code|details)? ?below\b", re.I)  # not shown here
# An argument the API ignores ("Note: This parameter is not used in PagedAdam8bit as it always uses 8-bit
# optimization"): no lesson in what to use, however well its name matches the section.
# ("Otherwise, the argument has no effect" is a condition, not this.)
_INAPPLICABLE = re.compile(r"\b(?:parameter|argument|it) is (?:not used|unused)\b|\bis not (?:used|supported) in\b", re.I)
_POINTER = re.compile(r"^(see|for (?:more )?details,? see|more details)\b", re.I)
_SIGNATURE = re.compile(r"^`[^`]+`$")
_FORMAL = re.compile(r"^\*\*(Returns?|Return type|Raises|Yields|Shape|Example)", re.I)  # what it returns, not when to use it
_NOTE = re.compile(r"^(?:\*\*(Note|Warning|Tip|Deprecated)[^*]*\*\*:?|(?:Note|Tip):)\s*", re.I)  # a plain "Note: " too


def sentences(block: str) -> list[str]:
    """The block's sentences, in order (an abbreviation such as "e.g." ends none)."""
    text = " ".join(block.split())
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        piece = text[start:match.start()]
        if _ABBREVIATION.search(piece) or piece.count("`") % 2 or _ENUMERATOR.fullmatch(piece.strip()):
            continue  # "e.g. Foo", a full stop inside `code. Like this`, or a list's number ("2. Fault tolerance")
        out.append(piece)
        start = match.end()
    if text[start:]:
        out.append(text[start:])
    return [_MARKER.sub("", s).strip() for s in out if _MARKER.sub("", s).strip()]


@dataclass
class Excerpt:
    """A passage's text, read back into its parts."""

    signature: str | None = None  # `name(args)` without its backticks
    summary: str | None = None  # the first prose block
    blocks: list[str] = field(default_factory=list)  # every other block, in order (GAP markers left out)


def read_excerpt(text: str) -> Excerpt:
    blocks = [b.strip() for b in text.split("\n\n") if b.strip() and b.strip() != GAP]
    out = Excerpt()
    if blocks and _SIGNATURE.match(blocks[0]):
        out.signature = blocks.pop(0)[1:-1]
    prose = [n for n, block in enumerate(blocks) if not block.startswith(("-", "*", "|", "#"))]
    # The first prose block, unless it says nothing of what the API does ("An instance `scaler` of `GradScaler`.")
    # and a later one does.
    n = next((n for n in prose if purpose_index(blocks[n]) is not None), prose[0] if prose else None)
    if n is None:
        out.blocks = blocks
    else:
        out.summary = blocks[n]
        out.blocks = blocks[:n] + blocks[n + 1:]
    return out


def purpose_index(summary: str | None) -> int | None:
    """Which of the summary's sentences says what the API is for: the first whole sentence that fits a table cell
    and is no caution, lead-in, or naming of a variable ("An instance `scaler` of `GradScaler`.")."""
    for n, sentence in enumerate(sentences(summary or "")):
        if not (_NOT_PURPOSE.match(sentence) or sentence.endswith(":") or _NAMING.match(sentence)
                or _NO_SENTENCE.search(sentence) or len(sentence) > MAX_PURPOSE
                or (n > 0 and _LEANING_PURPOSE.match(sentence))):
            return n
    return None


def purpose(summary: str | None) -> str | None:
    """The summary's purpose sentence, whole (a sentence too long for a cell is never cut: a later one is taken);
    None if it has none."""
    index = purpose_index(summary)
    return None if index is None else sentences(summary)[index]


MAX_KEPT_SIGNATURE = 200


def _arguments(inner: str) -> list[str]:
    """An argument list split at its top-level commas (a tuple default stays whole)."""
    out, depth, start = [], 0, 0
    for n, char in enumerate(inner):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            out.append(inner[start:n].strip())
            start = n + 1
    if inner[start:].strip():
        out.append(inner[start:].strip())
    return out


def short_signature(signature: str | None, keep: set[str] = frozenset()) -> str | None:
    """The signature, cut between arguments (with "…") when it runs long; the arguments named in ``keep``
    (those the section is about) are shown wherever they stand, "…" where others were left out."""
    if not signature or len(signature) <= MAX_SIGNATURE:
        return signature
    open_at = signature.find("(")
    close_at = signature.rfind(")")
    if open_at < 0 or close_at < open_at:
        return signature[:MAX_SIGNATURE].rsplit(" ", 1)[0] + " …"
    head, args = signature[:open_at + 1], _arguments(signature[open_at + 1:close_at])
    args = [a for a in args if a not in ("...", "…")]
    shown: list[str] = []
    length, gap = len(head) + 4, False
    for arg in args:
        name = arg.split("=", 1)[0].strip().lstrip("*")
        if not gap and length + len(arg) + 2 <= MAX_SIGNATURE:
            shown.append(arg)
        elif name in keep and length + len(arg) + 2 <= MAX_KEPT_SIGNATURE:
            if gap and shown and shown[-1] != "…":
                shown.append("…")
            shown.append(arg)
        else:
            gap = True
            continue
        length += len(arg) + 2
    while shown and shown[-1] in ("*", "/", "…"):
        shown.pop()
    return head + ", ".join(shown) + (", …)" if args and args[-1] not in shown else ")")


# How an argument's name switches its subject on: enable_timing is about timing.
_SWITCHES = ("enable", "disable", "use", "allow", "with")


def answers(argument: str | None, wanted: set[str]) -> bool:
    """Whether an argument is what the section is about (``fused`` under "Fused optimizers", ``pin_memory``,
    ``enable_timing`` under "CUDA event recording (timing GPU operations)", ``persistent_workers``)."""
    words = (argument or "").split("_")
    if len(words) > 1 and words[0].lower() in _SWITCHES:
        return answers("_".join(words[1:]), wanted)
    said = terms(argument or "")
    # persistent_workers under "Persistent workers": each of its words is the section's (num_workers's "num" is not)
    return bool(said) and (said[0] in wanted or (len(said) > 2 and set(said[1:]) <= wanted))


@dataclass
class Statement:
    """Sentences of one block, said in a bullet: ``argument`` names the argument an item documents."""

    text: str
    block: str
    argument: str | None = None
    score: float = 0.0
    position: int = 0  # its place among the passage's sentences (consecutive ones read as one passage)


def _live_arguments(excerpt: Excerpt) -> list[str]:
    """The arguments the excerpt documents, less those the API ignores (see _INAPPLICABLE)."""
    return [m.group(1) for b in excerpt.blocks if (m := _ITEM.match(b)) and not _INAPPLICABLE.search(b)]


def parameter_names(signature: str | None) -> dict[str, str]:
    """The signature's parameters, by their lowercase name: {"stream": "stream"} (an item may misspell one)."""
    names = re.findall(r"[(,]\s*\**(\w+)", signature or "")
    return {n.lower(): n for n in names}


def keyword_only(signature: str | None) -> list[str]:
    """The signature's keyword-only parameters, as spelled (those after a bare ``*``): a call names them."""
    star = re.search(r"[(,]\s*\*\s*(?=,|\))", signature or "")
    return re.findall(r"[(,]\s*(\w+)", signature[star.end():]) if star else []


def ignored_arguments(excerpt: Excerpt) -> set[str]:
    """The arguments the docstring says the API ignores (PagedAdam8bit's `optim_bits`): never shown as its own."""
    return {m.group(1) for b in excerpt.blocks if (m := _ITEM.match(b)) and _INAPPLICABLE.search(b)}


def _teaches(sentence: str) -> bool:
    """Whether a sentence can stand in a bullet: not too short to teach, a pointer ("See ..."), the lead-in to a
    list the bullet cannot show, or one that leans on what is not quoted ("the example below")."""
    return not (len(sentence) < 25 or sentence.startswith("See ") or sentence.endswith(":")
                or _NO_SENTENCE.search(sentence) or _BELOW.search(sentence))


def _module_word(term: str, modules: set[str]) -> bool:
    """Is ``term`` one of the module words, or a longer form of one ("optimizer" of bitsandbytes.optim)?"""
    return any(term == m or (len(m) >= 4 and term.startswith(m)) for m in modules)


def statements(excerpt: Excerpt, wanted: set[str], used: set[str] = frozenset(),
               limit: int = SENTENCES_PER_API, own: set[str] = frozenset(),
               topic: set[str] = frozenset()) -> list[Statement]:
    """The passage's sentences that teach when or why, best first (section words and usage cues), at most ``limit``.

    ``wanted``: the section's terms (kb.corpus.tokenize); ``used``: blocks and sentences already quoted in this file;
    ``own``: the terms of the modules holding the API (bitsandbytes.optim), which say what it is, not the section.
    The summary's other sentences count too; its purpose is said in the table. A sentence that leans on the one
    before it ("This behavior ...") is said with it, or not at all. ``topic``: the PART's own terms, which every
    section of its file says ("optimizer" in a PART on optimizers): a sentence saying only those is not this section's.
    """
    specific = wanted - topic
    pool: list[tuple[str, str, str | None, int]] = []  # (sentence, block, argument, position)
    premises: dict[str, str] = {}  # a statement joined from two -> the sentence the second leans on
    position = 0
    naming: dict[str, str] = {}  # variable -> "An instance `scaler` of `GradScaler`."
    definition: dict[str, tuple[str, int]] = {}  # argument -> its item's first sentence (what it is), position

    def add(said: list[str], block: str, argument: str | None, skip: int | None = None) -> None:
        nonlocal position
        for n, sentence in enumerate(said):
            if n == skip:
                position += 1
                continue
            # A sentence leaning on the purpose leans on the table below it: "It allreduces those tensors."
            # alone in a bullet misleads too.
            leaning = n > 0 and _ANAPHORA.match(sentence)
            named = _NAMING.match(sentence)
            if named:
                naming[named.group(1)] = sentence
                position += 1
                continue
            if argument is not None and n == 0:
                definition[argument] = (sentence, position)
            if leaning:
                if pool and pool[-1][1] == block and pool[-1][3] == position - 1:
                    last = pool.pop()  # said with the sentence it leans on, as one statement
                    pool.append((f"{last[0]} {sentence}", block, argument, last[3]))
                    premises[pool[-1][0]] = last[0]
                    continue
                position += 1
                continue  # what it leans on is not quoted here: alone it would mislead
            if (n == 0 or n - 1 == skip) and _CONNECTIVE.match(sentence):
                position += 1
                continue
            pool.append((sentence, block, argument, position))
            position += 1
        position += 1  # the next block's first sentence is not next to this one's last

    if excerpt.summary and excerpt.summary not in used:
        add(sentences(excerpt.summary), excerpt.summary, None, purpose_index(excerpt.summary))
    for block in excerpt.blocks:
        if block in used or _FORMAL.match(block):
            continue
        item = _ITEM.match(block)
        if item and _INAPPLICABLE.search(block):
            continue
        body = block[item.end():] if item else _NOTE.sub("", block)
        add(sentences(body), block, item.group(1) if item else None)
    scored, answer = [], []
    for sentence, block, argument, pos in pool:
        if sentence in used or (argument is not None and not _ARGUMENT.match(argument)):
            continue
        if premises.get(sentence) in used:
            continue  # said with the premise this file quoted already: the premise would be said twice
        said = set(terms(sentence)) & wanted
        cue = min(2, len(_CUE.findall(sentence))) * 0.75
        named = bool(argument and set(terms(argument)) & wanted)
        score = len(said) + cue + (0.5 if named else 0.0)
        statement = Statement(sentence, block, argument, score, pos)
        if answers(argument, wanted) and definition.get(argument, ("", -1))[1] == pos:
            answer.append(statement)  # what the argument is: the section's answer, said whatever its length
            continue
        if not (said or named) or not _teaches(sentence):
            continue  # of another topic, or a sentence that cannot stand in a bullet
        if argument is not None and not named and all(_module_word(t, own) for t in said):
            continue  # an 8-bit optimizer's `eps` "prevents division by zero in the optimizer": of the optimizer, not 8-bit
        if specific and not named and said <= topic:
            continue  # "`apex.optimizers.FusedAdam` may be used with or without Amp" under "Optimizer CPU overhead"
        scored.append((-score, pos, statement))
    if any(answers(argument, wanted) for argument in [*definition, *_live_arguments(excerpt)]):
        # The section's answer is an argument (quoted here or earlier in the file): other arguments are another topic.
        scored = [t for t in scored if t[2].argument is None or answers(t[2].argument, wanted)]
    scored.sort(key=lambda t: (t[0], t[1]))
    chosen = [s for _score, _pos, s in scored[:limit]]
    answered = {s.argument for s in answer}
    for statement in answer:  # an answering argument: its item, in order, as far as ANSWER_CHARS goes
        chosen.append(statement)
        # Every sentence of it that says the section, not its best one: the modes `mode` lists ("max-autotune") are what
        # the section plans; "use TORCH_LOGS=perf_hints to debug" in the same item is another section's.
        length = sum(len(c.text) for c in chosen if c.argument == statement.argument)
        for sentence, block, argument, pos in sorted(pool, key=lambda p: p[3]):
            if argument != statement.argument or pos <= statement.position or sentence in used \
                    or any(c.position == pos for c in chosen) or not _teaches(sentence) \
                    or not set(terms(sentence)) & wanted:
                continue
            if length + len(sentence) > ANSWER_CHARS:
                break
            chosen.append(Statement(sentence, block, argument, 0.0, pos))
            length += len(sentence)
    # An argument's sentence is said after the one that says what the argument is ("`2` means ..." needs it).
    for statement in list(chosen):
        arg = statement.argument
        if arg is None or arg in answered or arg not in definition:
            continue
        text, pos = definition[arg]
        if pos != statement.position and not any(s.position == pos for s in chosen) and text not in used \
                and not text.endswith(":"):
            chosen.append(Statement(text, statement.block, arg, 0.0, pos))
    chosen.sort(key=lambda s: s.position)
    # A sentence that says `scaler` is said with the one that names `scaler` (never the naming alone).
    for variable, sentence in naming.items():
        first = next((s for s in chosen if f"`{variable}" in s.text), None)
        if first is not None and sentence not in used:
            chosen.insert(chosen.index(first), Statement(sentence, first.block, first.argument, 0.0, -1))
    return chosen


def answered_above(excerpt: Excerpt, wanted: set[str], used: set[str]) -> list[str]:
    """The arguments that answer the section and whose item this file already quotes (said in an earlier section)."""
    out = []
    for block in excerpt.blocks:
        item = _ITEM.match(block)
        if item and answers(item.group(1), wanted):
            first = sentences(block[item.end():])[:1]
            if first and first[0] in used:
                out.append(item.group(1))
    return out


def deprecation(excerpt: Excerpt) -> str | None:
    """The docstring's deprecation notice, in its words ("... is deprecated ... Please use `x` instead."), or None."""
    for block in excerpt.blocks:
        if block.startswith(("**Deprecated", "Deprecated")):
            return " ".join(_NOTE.sub("", block).split()) or None
    return None


def cell(text: str) -> str:
    """Text safe in one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def joined(said: list[Statement]) -> str:
    """Statements as one quotation: consecutive sentences side by side, "…" where text was left out."""
    out = ""
    last = None
    for statement in said:
        if out:
            if last is not None and statement.position == last + 1:
                # Next to each other in the source: a full stop was there, or a flattened list's " - ".
                # (sentences() splits at a full stop, or at a flattened list's " - ")
                out += " " if re.search(r"[.!?][\"')\]`]*$", out) else " - "
            else:
                out += " … "
        out += statement.text
        last = statement.position
    return out


def excerpt_blocks(excerpt: Excerpt, used: set[str], keep_summary: bool, wanted: set[str] = frozenset(),
                   own: set[str] = frozenset()) -> list[str]:
    """The excerpt's blocks to quote: the summary less its purpose sentence (the table's) unless
    ``keep_summary``, then the other blocks, less what ``used`` shows this file already quotes. Where an
    argument answers the section (``wanted``: its terms), no other argument is quoted, nor one that says of the
    section only what the API's modules say (``own``, as in :func:`statements`)."""
    out = []
    answered = any(answers(a, wanted) for a in _live_arguments(excerpt))
    if excerpt.summary:
        said = sentences(excerpt.summary)
        index = None if keep_summary else purpose_index(excerpt.summary)
        rest = [x for n, x in enumerate(said) if n != index]
        rest = [x for x in rest if x not in used]
        while rest and rest[-1].startswith("See "):
            rest.pop()  # "See `cuda-semantics` for details.": a page this file cannot show
        if rest and excerpt.summary not in used:
            out.append(" ".join(rest))
    for n, block in enumerate(excerpt.blocks):
        if block in used:
            continue
        following = excerpt.blocks[n + 1] if n + 1 < len(excerpt.blocks) else ""
        if block.rstrip().endswith(":") and not following.startswith(("-", "*", "|")) \
                and not re.match(r"\d+[.)]\s", following):
            continue  # "... may be used as a drop-in replacement for `AdamW`:" and the code the excerpt left out
        item = _ITEM.match(block)
        if item and answered and not answers(item.group(1), wanted):
            continue  # "Compilation modes" is `mode`, not `disable`
        if item and _INAPPLICABLE.search(block):
            continue  # an argument the API ignores teaches nothing
        body = block[item.end():] if item else _NOTE.sub("", block)
        if item and wanted and not set(terms(item.group(1))) & wanted \
                and all(_module_word(t, own) for t in set(terms(body)) & wanted):
            continue  # `is_paged` "Whether the optimizer is a paged optimizer" under "8-bit optimizers"
        said = sentences(body)
        if said and all(_POINTER.match(x) or _NAMING.match(x) for x in said):
            continue  # "See `cuda-memory-management` for more details.": a page this file cannot show
        if not any(x in used for x in said):
            out.append(block)
        elif not item and not block.startswith(("-", "*", "|", "#")):
            # A paragraph a bullet already took a sentence of: the rest of it, "…" where that sentence stood.
            rest = [x if x not in used else GAP for x in sentences(body) if not _POINTER.match(x)]
            while rest and rest[0] == GAP:
                rest.pop(0)
            while rest and rest[-1] == GAP:
                rest.pop()
            if rest:
                out.append(" ".join(x for n, x in enumerate(rest) if x != GAP or rest[n - 1] != GAP))
    kept = [_without_dangling_lead(excerpt, out, n) for n in range(len(out))]
    return [b for b in kept if b] or out


def _without_dangling_lead(excerpt: Excerpt, out: list[str], n: int) -> str:
    """Block ``n`` of the quote, less a last sentence that leads into a block not quoted after it ("... per chunk.
    Caveats:" and then another topic): the lead-in would make the next block read as what it introduces."""
    block = out[n].rstrip()
    if not block.endswith(":"):
        return out[n]
    at = excerpt.blocks.index(out[n]) if out[n] in excerpt.blocks else None
    if at is not None and n + 1 < len(out) and at + 1 < len(excerpt.blocks) and excerpt.blocks[at + 1] == out[n + 1]:
        return out[n]
    said = sentences(block)
    return " ".join(said[:-1])  # a block that is nothing but the lead-in ("Supports three settings:") goes
