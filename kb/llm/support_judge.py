"""The semantic half of the support check: the configured model judges whether a cited passage says what a sentence says.

The lexical check (kb.llm.support) catches a number or an API name the passage lacks and a sentence that shares
too few of its words; it cannot see a sentence that reuses the passage's words to claim something else ("divides"
where the passage says "multiplies", "always" where it says "may"). Static embeddings do not see that either
(bench/bench_support.py measures both on tests/support_labels.json). So the sentences that pass the lexical check
go to the model once per draft, each with the passages it cites, quoted as data; a sentence it calls unsupported
fails with the model's reason, and goes back to the writer like any other.

A reply kb cannot read (no JSON, a sentence left out) judges nothing: those sentences keep the lexical verdict,
and a warning says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kb.llm.prompt import SYSTEM_PROMPT, _section_nonce, data_block
from kb.llm.reply import json_list
from kb.llm.support import Review, Verdict

JUDGE_PROMPT = """kb checks a knowledge file sentence by sentence. For each numbered sentence below, decide whether
the passages it cites (quoted as data before the sentences) SAY what the sentence claims: the same facts, not only the same
topic or words. A sentence that adds, reverses, generalises ("always", "only", "every") or changes a relation the
passages state is not supported. A faithful paraphrase is supported.

Reply with a JSON list only, one object per sentence, in order:
[{{"sentence": 1, "supported": true}}, {{"sentence": 2, "supported": false, "why": "the passage says X, not Y"}}]

{items}"""
MAX_WHY = 200


@dataclass
class JudgeResult:
    """The verdicts after the judge, and what its call cost and noted."""

    review: Review
    judged: int = 0  # sentences the judge was asked about
    rejected: int = 0  # of those, the ones it called unsupported
    notes: list[str] = field(default_factory=list)


def judge_prompt(verdicts: list[Verdict], passages: Mapping[int, str]) -> tuple[str, str]:
    """(system, user) asking the model about each sentence; the passages they cite quoted once, as data."""
    cited = list(dict.fromkeys(n for v in verdicts for n in v.cites))  # each passage quoted once, however often cited
    nonce = _section_nonce(*(v.sentence for v in verdicts), *(passages[n] for n in cited))
    items = [data_block(nonce, f"passage [{n}]", [passages[n]]) for n in cited]
    items += [data_block(nonce, f"sentence {i}, citing {''.join(f'[{n}]' for n in v.cites)}", [v.sentence])
              for i, v in enumerate(verdicts, start=1)]
    return SYSTEM_PROMPT.format(nonce=nonce), JUDGE_PROMPT.format(items="\n".join(items)).strip() + "\n"


def parse_judgement(text: str, count: int) -> dict[int, str | None] | None:
    """{sentence number: None (supported) or the reason} from a reply; None when the reply holds no verdict list."""
    items = json_list(text)
    if items is None:
        return None
    out: dict[int, str | None] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("sentence"), int):
            continue
        number, supported = item["sentence"], item.get("supported")
        if 1 <= number <= count and isinstance(supported, bool):
            why = " ".join(str(item.get("why") or "").split())[:MAX_WHY] or "no reason given"
            out[number] = None if supported else why
    return out


def apply_judgement(review: Review, asked: list[Verdict], judgement: dict[int, str | None] | None) -> JudgeResult:
    """The review with the judge's rejections as reasons (sentences it did not judge keep the lexical verdict)."""
    result = JudgeResult(review=review, judged=len(asked))
    if judgement is None:
        result.notes.append(f"the support judge's reply held no verdict list; {len(asked)} sentence(s) kept the "
                            "lexical check's verdict")
        return result
    missing = len(asked) - len(judgement)
    if missing:
        result.notes.append(f"the support judge left {missing} sentence(s) unjudged; they kept the lexical verdict")
    by_id = {id(v): i for i, v in enumerate(asked, start=1)}
    verdicts = []
    for v in review.verdicts:
        why = judgement.get(by_id[id(v)]) if id(v) in by_id else None
        if why is not None:
            short = v.sentence if len(v.sentence) <= 120 else v.sentence[:117] + "..."
            cited = "".join(f"[{n}]" for n in v.cites)
            v = Verdict(v.sentence, v.cites, f'the sentence "{short}" is not what {cited} says (judged: {why})')
            result.rejected += 1
        verdicts.append(v)
    result.review = Review(verdicts)
    return result
