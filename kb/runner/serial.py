"""Plain-data forms of the engine types, for the checkpointed graph state (and back)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kb.engine.types import ContextDoc, Draft, Passage, Research
from kb.plan.model import Part, Read, Section
from kb.records import SourceRef


def part_to_dict(part: Part) -> dict[str, Any]:
    return part.to_dict()


def part_from_dict(data: dict[str, Any]) -> Part:
    return Part(
        number=int(data["number"]),
        title=data.get("title") or "",
        line=int(data.get("line") or 0),
        batch=data.get("batch"),
        target=data.get("target"),
        status=data.get("status") or "pending",
        completed_at=data.get("completed_at"),
        status_line=data.get("status_line"),
        planned_lines=data.get("planned_lines"),
        reads=[Read(path=r["path"], note=r.get("note") or "", line=int(r.get("line") or 0)) for r in data.get("reads") or []],
        influenced_by=data.get("influenced_by"),
        searches=list(data.get("searches") or []),
        sections=[
            Section(number=int(s["number"]), title=s["title"], details=s.get("details") or "", line=int(s.get("line") or 0))
            for s in data.get("sections") or []
        ],
        cite=list(data.get("cite") or []),
        drop=data.get("drop"),
    )


def _source(data: dict[str, Any]) -> SourceRef:
    return SourceRef(id=int(data["id"]), title=data.get("title") or "", kind=data.get("kind") or "doc",
                     locator=data.get("locator") or "", accessed=data.get("accessed"))


def context_to_dicts(docs: list[ContextDoc]) -> list[dict[str, Any]]:
    return [asdict(d) for d in docs]


def context_from_dicts(data: list[dict[str, Any]]) -> list[ContextDoc]:
    return [ContextDoc(path=d["path"], note=d.get("note") or "", text=d.get("text")) for d in data]


def research_to_dict(research: Research) -> dict[str, Any]:
    # Section numbers become string keys: checkpoint serialisers want string-keyed maps.
    return {
        "by_section": {str(k): [asdict(p) for p in v] for k, v in research.by_section.items()},
        "sources": [asdict(s) for s in research.sources],
        "warnings": list(research.warnings),
        "log": dict(research.log),
        "candidates": {str(k): [asdict(p) for p in v] for k, v in research.candidates.items()},
    }


def research_from_dict(data: dict[str, Any]) -> Research:
    return Research(
        by_section={int(k): [Passage(**p) for p in v] for k, v in (data.get("by_section") or {}).items()},
        sources=[_source(s) for s in data.get("sources") or []],
        warnings=list(data.get("warnings") or []),
        log=dict(data.get("log") or {}),
        candidates={int(k): [Passage(**p) for p in v] for k, v in (data.get("candidates") or {}).items()},
    )


def draft_to_dict(draft: Draft) -> dict[str, Any]:
    data = asdict(draft)
    data["sources"] = [asdict(s) for s in draft.sources]
    return data


def draft_from_dict(data: dict[str, Any]) -> Draft:
    fields = {k: v for k, v in data.items() if k in Draft.__dataclass_fields__}
    fields["sources"] = [_source(s) for s in data.get("sources") or []]
    fields["warnings"] = list(data.get("warnings") or [])
    return Draft(**fields)
