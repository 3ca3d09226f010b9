"""A second opinion on relevance: the configured model reads the passages local research ranked below its bar.

The offline judge (kb.engine.offline.relevance) scores words and static embeddings; it cannot read. It leaves a
section empty rather than fill it off topic, so some sections stay empty whose answer it ranked just below the bar
(torch.jit.save under "Serialization and deployment", beside torch.save). With an LLM engine, research offers those
passages (``Research.candidates``) and the model says, per passage, whether it is about the section; the ones it
accepts go to the section's writer like any other passage, and what it writes from them is checked sentence by
sentence (a section none of whose sentences hold up is still marked empty).

A reply kb cannot read accepts nothing: the section stays empty, and a note says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kb.engine.types import Passage, Research, withdraw_found_nothing
from kb.llm.prompt import SYSTEM_PROMPT, _section_nonce, data_block, section_label
from kb.llm.reply import json_list
from kb.plan.model import Section

RELEVANCE_PROMPT = """kb is filling {what}.{details}
Research found nothing it could use for it on its own; below are the passages it ranked highest, quoted as data.
For each numbered passage, decide whether it is ABOUT what this section covers: a reader of the section would learn
from it what to use, when or how. A passage that only shares a word with the title is not (an optimizer's `eps`
argument under "Numerical stability (loss scaling)"; a general-purpose save function under a section on saving one
kind of model, when that kind's own API is among the passages).

Reply with a JSON array only, one object per passage, in order:
[{{"passage": 1, "on_topic": true}}, {{"passage": 2, "on_topic": false, "why": "about X, not Y"}}]

{items}"""


@dataclass
class RelevanceResult:
    """What the model accepted for one section, and what its reply noted."""

    accepted: list[Passage] = field(default_factory=list)
    asked: int = 0  # passages the model was shown
    judged: dict[str, bool] = field(default_factory=dict)  # locator -> on topic, for each passage it judged
    notes: list[str] = field(default_factory=list)


def relevance_prompt(file_title: str, section: Section, candidates: list[Passage]) -> tuple[str, str]:
    """(system, user) asking the model whether each candidate passage is about ``section``; passages quoted as data."""
    nonce = _section_nonce(section.title, *(p.text for p in candidates))
    items = [data_block(nonce, f"passage {n}: {p.locator}", [p.text]) for n, p in enumerate(candidates, start=1)]
    what = (f'section {section.number} ("{section.title}") of the knowledge file "{file_title}"' if section.number
            else f'the knowledge file "{file_title}" (the PART plans no sections: the file is its one section)')
    details = f" The plan asks it to cover: {section.details.rstrip('. ')}." if section.details else ""
    user = RELEVANCE_PROMPT.format(what=what, details=details, items="\n".join(items))
    return SYSTEM_PROMPT.format(nonce=nonce), user.strip() + "\n"


def parse_relevance(text: str, count: int) -> dict[int, bool] | None:
    """{passage number: on topic} from a reply; None when it holds no verdict list kb can read."""
    items = json_list(text)
    if items is None:
        return None
    verdicts: dict[int, bool] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("on_topic"), bool):
            continue
        number = item.get("passage")
        if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= count:
            verdicts[number] = item["on_topic"]
    return verdicts or None


def apply_relevance(section: Section, candidates: list[Passage], reply: str, limit: int) -> RelevanceResult:
    """The candidates the reply calls on topic, best-ranked first, at most ``limit`` ([run] passages_per_section)."""
    result = RelevanceResult(asked=len(candidates))
    verdicts = parse_relevance(reply, len(candidates))
    label = section_label(section.number, section.title)
    if verdicts is None:
        result.notes.append(f"{label}: the relevance judge's reply held no verdict list kb could read; "
                            "the section stays empty")
        return result
    unjudged = len(candidates) - len(verdicts)
    if unjudged:
        result.notes.append(f"{label}: the relevance judge left {unjudged} of {len(candidates)} passages unjudged; "
                            "they count as off topic")
    result.judged = {p.locator: verdicts[n] for n, p in enumerate(candidates, start=1) if n in verdicts}
    on_topic = [p for n, p in enumerate(candidates, start=1) if verdicts.get(n)]
    result.accepted = on_topic[:limit]
    if on_topic:
        kept = "" if len(on_topic) <= limit else f"; the best {limit} are kept ([run] passages_per_section)"
        result.notes.append(f"{label}: of the {len(candidates)} passages research ranked below its bar, the model "
                            f"judged {len(on_topic)} on topic{kept}: "
                            f"{', '.join(p.locator for p in result.accepted)} go to the section's writer")
    return result


def with_accepted(research: Research, accepted: dict[int, list[Passage]]) -> Research:
    """Research with the accepted candidates as their sections' passages (the rest of the candidates dropped)."""
    by_section = dict(research.by_section)
    for number, passages in accepted.items():
        by_section[number] = [*by_section.get(number, []), *passages]
    filled = {number for number, passages in accepted.items() if passages}
    return replace(research, by_section=by_section, warnings=withdraw_found_nothing(research.warnings, filled),
                   candidates={})
