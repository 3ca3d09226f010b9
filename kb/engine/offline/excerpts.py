"""Cut a corpus document down to the blocks a section needs: its summary plus the blocks that match."""

from __future__ import annotations

import ast
import re

from kb.corpus.documents import CorpusDoc
from kb.corpus.tokenize import terms

GAP = "[…]"
MAX_BLOCKS = 4
MAX_CHARS = 1400
MAX_EXAMPLES = 2
MAX_ANSWERS = 2  # argument items that answer a section, quoted besides its best blocks
MAX_EXAMPLE_LINES = 40


def _is_signature(block: str) -> bool:
    return block.startswith("`") and block.endswith("`") and block.count("`") == 2


_ITEM_NAME = re.compile(r"^- `([\w.]+)`")
NAMED_BONUS = 3.0
OWN_WEIGHT = 0.5  # the query's title and detail terms weigh at least this (kb.engine.offline.query)


def block_score(block: str, weights: dict[str, float], idf, names: frozenset[str] = frozenset()) -> float:
    """How much a block says about the query; an argument the plan names (``pin_memory``) counts triple."""
    score = sum(weights.get(t, 0.0) * idf(t) for t in terms(block))
    item = _ITEM_NAME.match(block)
    return score * NAMED_BONUS if item and item.group(1) in names else score


def _answers(block: str, own: dict[str, float]) -> bool:
    """An argument item whose name is a word of the section itself (``fused`` under "Fused optimizers")."""
    from kb.engine.offline.digest import answers  # noqa: PLC0415 - digest imports GAP from here

    item = _ITEM_NAME.match(block)
    return item is not None and answers(item.group(1), set(own))


def excerpt(doc: CorpusDoc, weights: dict[str, float], idf, *, names: frozenset[str] = frozenset(),
            max_blocks: int = MAX_BLOCKS, max_chars: int = MAX_CHARS) -> tuple[str, float]:
    """The doc's summary and best-matching blocks, in their original order, with ``[…]`` where text was left out.

    ``names`` are identifiers the plan mentions (their argument blocks are preferred). Returns the
    excerpt and the score of its best block (0 when nothing but the summary matched).
    """
    blocks = [b.strip() for b in doc.text.split("\n\n") if b.strip()]
    if not blocks:
        return "", 0.0
    from kb.engine.offline.digest import purpose_index  # noqa: PLC0415 - digest imports GAP from here

    signature = 0 if _is_signature(blocks[0]) else None
    prose = [i for i, b in enumerate(blocks) if i != signature and not b.startswith(("-", "*"))]
    summary = prose[0] if prose else None
    # A first paragraph that only names a variable ("An instance `scaler` of `GradScaler`.") comes with the
    # paragraph that says what the API does, the table's purpose.
    also = next((i for i in prose if purpose_index(blocks[i]) is not None), None) \
        if summary is not None and purpose_index(blocks[summary]) is None else None
    # A block is quoted for what it says about the section itself (a title or detail word), not only
    # about the PART's wider topic: "More from checkpoint" must not quote its `debug` argument.
    own = {t: w for t, w in weights.items() if w >= OWN_WEIGHT}
    scored = sorted(((block_score(b, weights, idf, names), i) for i, b in enumerate(blocks)
                     if i not in (signature, summary, also) and block_score(b, own, idf, names) > 0), reverse=True)

    chosen = {i for i in (summary, also) if i is not None}
    used = sum(len(blocks[i]) for i in chosen)
    best = block_score(blocks[summary], weights, idf) if summary is not None else 0.0
    for score, i in scored:
        if score <= 0 or len(chosen) >= max_blocks:
            break
        if used + len(blocks[i]) > max_chars and chosen:
            continue
        chosen.add(i)
        used += len(blocks[i])
        best = max(best, score)
    # An argument that answers the section is quoted besides the blocks that say most about it (and does not
    # change the best score, which ranks the passage).
    chosen.update([i for _score, i in scored if _answers(blocks[i], own)][:MAX_ANSWERS])
    if signature is not None:  # however long: the table shortens it around the arguments the section is about
        chosen.add(signature)
    if doc.deprecated:  # a deprecated API is never quoted without the notice that says what replaces it
        chosen.update(i for i, b in enumerate(blocks) if b.startswith(("**Deprecated", "Deprecated")))
    out: list[str] = []
    last = -1
    for i in sorted(chosen):
        if out and i != last + 1 and out[-1] != GAP:
            out.append(GAP)
        out.append(blocks[i])
        last = i
    return "\n\n".join(out), best


_DOTTED_CALL = re.compile(r"\b([A-Za-z_]\w*(?:\.\w+)+)\s*\(")


def _private_calls(code: str, locator: str) -> list[str]:
    """Calls in ``code`` into the package's private names (``torch._C._jit_set_autocast_mode``) that the documented
    API's own path does not hold (``torch._logging.set_logs`` may call ``torch._logging``)."""
    own = locator.split(".")
    return [name for name in _DOTTED_CALL.findall(code)
            if name.split(".")[0] == own[0]
            and any(part.startswith("_") and not part.startswith("__") and part not in own for part in name.split(".")[1:])]


def pick_examples(doc: CorpusDoc, weights: dict[str, float], idf, limit: int = MAX_EXAMPLES,
                  min_weight: float = 0.5) -> list[str]:
    """The doc's examples about the section itself (a term of its title or details), short and valid, best first."""
    own = {t: w for t, w in weights.items() if w >= min_weight}
    ranked = []
    for n, code in enumerate(doc.examples):
        if len(code.splitlines()) > MAX_EXAMPLE_LINES:
            continue
        try:
            ast.parse(code)
        except (SyntaxError, ValueError):
            continue
        if _private_calls(code, doc.locator):
            continue  # it reaches into another module's internals (torch._C._jit_set_autocast_mode): no lesson
        score = block_score(code, own, idf)
        if score <= 0:
            continue  # an example of something else the doc also covers
        ranked.append((-score, n, code))
    ranked.sort()
    return [code for _score, _n, code in ranked[:limit]]
