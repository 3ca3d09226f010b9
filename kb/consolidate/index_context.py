"""What INDEX.md and SKILL.md list: the templates' context, made of what was read.

Every knowledge file becomes one :class:`IndexFile` (title, summary, sections, sources,
snippet status, the plan and PART it came from), grouped by folder for INDEX.md and by
top-level folder for SKILL.md, with the totals both show. Plain data in and out: a new
column or mark in INDEX.md starts here (a field of IndexFile) and ends in the template.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Any

from kb.consolidate import render
from kb.consolidate.model import IndexFile
from kb.consolidate.plans import resolve_plan_link
from kb.consolidate.snippets import SnippetResults, describe

_DIGITS = re.compile(r"(\d+)")


@functools.lru_cache(maxsize=1 << 16)  # the same paths are sorted several times a run
def natural_key(path: str) -> tuple:
    """Sort key that puts ``file-9`` before ``file-10``: text pieces lowercased, digit runs as numbers."""
    pieces: list = _DIGITS.split(path.lower())  # text, digits, text, ...: the digit runs at odd places
    pieces[1::2] = map(int, pieces[1::2])
    return tuple(pieces)


class PlanLinks:
    """``resolve_plan_link`` remembered per value: thousands of drops name a few plans."""

    def __init__(self, plan_files: set[str], moves: dict[str, str]):
        self.plan_files, self.moves, self.seen = plan_files, moves, {}

    def __call__(self, value: str | None) -> str | None:
        if value not in self.seen:
            self.seen[value] = resolve_plan_link(value, self.plan_files, self.moves)
        return self.seen[value]


def snippet_status(count: int, results: SnippetResults | None, rel: str) -> tuple[str, dict[str, int]]:
    """(the INDEX line's snippet words, validation status -> count) for one file."""
    if results is None or results.problem:
        return (f"{count} {'snippet' if count == 1 else 'snippets'}" if count else "no snippets"), {}
    counts = dict(results.by_file.get(rel) or {})
    validated = sum(counts.values())
    total = max(count, validated)
    if total == 0:
        return "no snippets", counts
    text = f"{total} {'snippet' if total == 1 else 'snippets'}"
    detail = describe(counts)
    unvalidated = total - validated
    if unvalidated:
        detail = f"{detail}, {unvalidated} not validated" if detail else "not validated"
    return f"{text}: {detail}", counts


POINTING_MARK = "(points to its answer)"  # INDEX.md's mark on a section that only points to the section quoting it
CURATED_MARK = "(a reviewer chose its passage)"  # ... and on one filled with a passage a reviewer accepted (kb.curation)


def _marked(title: str, drop: dict[str, Any]) -> str:
    """A section's title as INDEX.md lists it: marked empty, pointing, chosen by a reviewer (as its drop records)."""
    if title in set(drop.get("sections_empty") or ()):
        return f"{title} (empty)"
    marks = [mark for key, mark in (("sections_pointing", POINTING_MARK), ("sections_curated", CURATED_MARK))
             if title in set(drop.get(key) or ())]
    return " ".join([title, *marks])


def index_entry(rel: str, info: dict[str, Any], drop: dict[str, Any], plan_link: PlanLinks,
                results: SnippetResults | None) -> IndexFile:
    """One knowledge file as the templates see it: its front matter first, its drop where that is silent."""
    plan = info.get("plan") or drop.get("plan")
    part = info.get("part") if info.get("part") is not None else drop.get("part")
    batch = info.get("batch") if info.get("batch") is not None else drop.get("batch")
    plan_path = plan_link(plan)
    status, counts = snippet_status(int(info.get("snippets") or 0), results, rel)
    return IndexFile(
        path=rel,
        link=render.md_link(rel),
        title=info["title"],
        summary=info.get("summary") or "",
        # A section the drop records as empty is marked so in INDEX.md (issue 19).
        sections=[_marked(t, drop) for t in info.get("sections") or []],
        sources=int(info.get("sources") or 0),
        snippets=int(info.get("snippets") or 0),
        results=counts,
        snippet_status=status,
        plan=_stem(plan_path or plan) if plan else None,
        plan_path=plan_path,
        plan_link=render.md_link(plan_path) if plan_path else None,
        batch=batch,
        part=part,
        edited=bool(info.get("edited")),
        support=support_words(drop.get("support") or {}),
    )


def support_words(support: dict[str, Any]) -> str:
    """INDEX.md's words for a drop's citation check, as kb report counts it ("" where none ran)."""
    rate, sentences = support.get("rate"), support.get("sentences")
    if rate is None or not sentences:
        return ""
    return f"support {rate:.0%} of {sentences} drafted {'sentence' if sentences == 1 else 'sentences'}"


@functools.lru_cache(maxsize=1024)
def _stem(path: str) -> str:
    return PurePosixPath(path).stem


def build(
    knowledge: dict[str, dict],
    drop_by_target: dict[str, dict],
    plan_files: set[str],
    moves: dict[str, str],
    results: SnippetResults | None,
    prefix: str = "knowledge/",
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(totals, INDEX topics by folder, SKILL topics by top-level folder)."""
    by_folder: dict[str, list[IndexFile]] = defaultdict(list)
    plan_link = PlanLinks(plan_files, moves)
    totals = {"files": 0, "topics": 0, "sections": 0, "sources": 0, "snippets": 0, "validation": "", "validated": {},
              "sections_empty": 0, "sections_pointing": 0, "sections_curated": 0}
    for rel in sorted(knowledge, key=natural_key):
        entry = index_entry(rel, knowledge[rel], drop_by_target.get(rel) or {}, plan_link, results)
        by_folder[rel.rsplit("/", 1)[0] if "/" in rel else ""].append(entry)
        totals["files"] += 1
        totals["sections"] += len(entry.sections)
        totals["sections_empty"] += sum(1 for t in entry.sections if t.endswith(" (empty)"))
        totals["sections_pointing"] += sum(1 for t in entry.sections if f" {POINTING_MARK}" in t)
        totals["sections_curated"] += sum(1 for t in entry.sections if t.endswith(f" {CURATED_MARK}"))
        totals["sources"] += entry.sources
        totals["snippets"] += max(entry.snippets, sum(entry.results.values()))
    if results is not None and not results.problem:
        totals["validated"] = dict(results.totals)
        totals["validation"] = describe(results.totals) or "no results"
    topics = []
    for folder in sorted(by_folder, key=natural_key):
        inner = (folder + "/")[len(prefix) :] if (folder + "/").startswith(prefix) else ""
        name = inner.rstrip("/") or "(top level)"
        topics.append({"name": name, "path": folder, "link": render.md_link((folder or ".") + "/"), "files": by_folder[folder]})
    totals["topics"] = len(topics)
    return totals, topics, skill_topics(topics, prefix)


def skill_topics(topics: list[dict[str, Any]], prefix: str = "knowledge/") -> list[dict[str, Any]]:
    """INDEX.md's topics merged by top-level folder, as SKILL.md lists them."""
    skill: dict[str, dict[str, Any]] = {}
    for topic in topics:
        top = topic["name"].split("/", 1)[0]
        entry = skill.setdefault(top, {"name": top, "link": render.md_link(f"{prefix}{top}/" if top != "(top level)" else (prefix or "./")),
                                       "files": 0, "titles": []})
        entry["files"] += len(topic["files"])
        entry["titles"].extend(f.title for f in topic["files"])
    return list(skill.values())
