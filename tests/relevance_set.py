"""The labelled relevance set (tests/relevance_labels.jsonl) and how a section filler is scored on it.

Each line is a (section, passage, label) pair judged by reading, by the rules of QUALITY.md:
S (supported: about what the section is about), P (partial: on topic, not what the section asked
for, or only part of it), U (unsupported: a different topic that shares a word with the title).
``on_topic`` is S or P. The pairs come from two plans: the performance plan (torch docstrings)
and tests/fixtures/asyncio-plan.md (asyncio and concurrent.futures docstrings beside torch's).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = HERE / "relevance_labels.jsonl"
PLANS = {"performance": HERE / "fixtures" / "seed-002-performance-plan.txt",
         "asyncio": HERE / "fixtures" / "asyncio-plan.md"}
PACKAGES = ["torch", "asyncio", "concurrent"]  # the corpus the benchmark fills both plans from


def load_labels(packages: list[str] | None = None) -> dict[tuple[str, int, int, str], dict]:
    """(plan, part, section, locator) -> the labelled row; with ``packages``, only passages from those packages
    (the set also holds passages of deepspeed, bitsandbytes and of packages audited for the shipped plan, which the
    benchmark's corpus does not index: an answer its corpus lacks is no recall miss of the filler)."""
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if packages is not None:
        rows = [r for r in rows if r["locator"].split(".", 1)[0] in packages]
    return {(r["plan"], r["part"], r["section"], r["locator"]): r for r in rows}


@dataclass
class Score:
    """How a filler's picks compare with the labels."""

    picked: int = 0  # (section, passage) pairs the filler chose
    labelled: Counter = field(default_factory=Counter)  # ... of those, by label (S, P, U)
    unlabelled: list[tuple] = field(default_factory=list)
    on_topic_total: int = 0  # labelled on-topic pairs (S or P)
    on_topic_found: int = 0  # ... the filler chose
    sections_with_answer: int = 0  # sections with at least one labelled on-topic pair
    sections_answered: int = 0  # ... where the filler chose at least one of them
    sections_filled: int = 0
    sections: int = 0
    wrong: list[tuple] = field(default_factory=list)  # picks labelled U

    @property
    def strict(self) -> float:
        judged = sum(self.labelled.values())
        return self.labelled["S"] / judged if judged else 1.0

    @property
    def lenient(self) -> float:
        judged = sum(self.labelled.values())
        return (self.labelled["S"] + self.labelled["P"]) / judged if judged else 1.0

    @property
    def recall(self) -> float:
        return self.on_topic_found / self.on_topic_total if self.on_topic_total else 1.0

    @property
    def section_recall(self) -> float:
        return self.sections_answered / self.sections_with_answer if self.sections_with_answer else 1.0


def score_picks(picks: dict[tuple[str, int, int], list[str]], labels: dict) -> Score:
    """Score a filler's picks: (plan, part, section) -> chosen locators."""
    score = Score()
    answers: dict[tuple, set[str]] = {}
    for (plan, part, section, locator), row in labels.items():
        if row["on_topic"]:
            answers.setdefault((plan, part, section), set()).add(locator)
    score.on_topic_total = sum(len(v) for v in answers.values())
    score.sections_with_answer = len(answers)
    for key, locators in picks.items():
        score.sections += 1
        score.sections_filled += bool(locators)
        for locator in locators:
            score.picked += 1
            row = labels.get((*key, locator))
            if row is None:
                score.unlabelled.append((*key, locator))
                continue
            score.labelled[row["label"]] += 1
            if row["label"] == "U":
                score.wrong.append((*key, locator))
        good = answers.get(key, set()) & set(locators)
        score.on_topic_found += len(good)
        score.sections_answered += bool(good)
    return score


def rank_plan(researcher, plan, plan_id: str, index) -> dict[tuple[str, int, int], object]:
    """Every section's ranking (kb.engine.offline.research.SectionResult: chosen and rejected, with why) for one plan."""
    researcher.use_plan(plan)  # as kb run-plan does
    return {(plan_id, part.number, result.query.number): result
            for part in plan.parts for result in researcher.rank_sections(part, [], index)}


def fill_plan(researcher, plan, plan_id: str, index, ranked: dict | None = None) -> dict[tuple[str, int, int], list[str]]:
    """Every section's chosen locators for one plan (from ``ranked``, rank_plan's result, when given)."""
    ranked = ranked if ranked is not None else rank_plan(researcher, plan, plan_id, index)
    return {key: [c.doc.locator for c in result.chosen] for key, result in ranked.items()}


def link_plan(researcher, plan, plan_id: str, picks: dict[tuple[str, int, int], list[str]]) -> dict[tuple[str, int, int], list[str]]:
    """The sections the filler left empty that the writer fills with a link: each gets the passages that another
    PART of the plan picks (an earlier batch's, or its own batch's) and ``researcher.linkable`` finds on topic
    for it, as the offline writer asks (kb.engine.offline.owners, kb.engine.offline.writer)."""
    links = {}
    for part in plan.parts:
        quoted, seen = [], set()
        for other in plan.parts:
            if other.number == part.number or other.batch is None or part.batch is None or other.batch > part.batch:
                continue
            planned = {s.number: s for s in other.sections}
            for section in other.sections:
                for locator in picks.get((plan_id, other.number, section.number), []):
                    if locator not in seen:
                        seen.add(locator)
                        quoted.append((locator, planned[section.number].title, planned[section.number].details or ""))
        for section in part.sections:
            key = (plan_id, part.number, section.number)
            if key in picks and not picks[key]:
                found = researcher.linkable(part, section.number, quoted)
                if found:
                    links[key] = found
    return links


def score_verdicts(drops, labels: dict, plan_id: str = "performance") -> dict[str, Counter]:
    """How a model's relevance verdicts (an LLM-engine drop's ``research.relevance.verdicts``: section -> locator ->
    on topic) compare with the labels: for the passages it called on topic, and for those it called off topic,
    the count of each label (S, P, U, or "unlabelled")."""
    out = {"on_topic": Counter(), "off_topic": Counter()}
    for drop in drops:
        verdicts = ((drop.research or {}).get("relevance") or {}).get("verdicts") or {}
        for section, judged in verdicts.items():
            for locator, on_topic in judged.items():
                row = labels.get((plan_id, drop.part, int(section), locator))
                out["on_topic" if on_topic else "off_topic"][row["label"] if row else "unlabelled"] += 1
    return out

