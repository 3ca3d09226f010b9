"""Plain data for a parsed plan. Line numbers are 1-based lines of the (repaired) file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

PartStatus = Literal["pending", "done", "failed"]


@dataclass
class Read:
    path: str
    note: str
    line: int


@dataclass
class Section:
    number: int
    title: str
    details: str
    line: int


@dataclass
class Problem:
    line: int
    message: str


@dataclass
class Part:
    number: int
    title: str
    line: int
    batch: int | None = None
    target: str | None = None
    status: PartStatus = "pending"
    completed_at: str | None = None
    status_line: int | None = None  # the first status line (a PART listed twice has more: status_lines)
    status_lines: list[int] = field(default_factory=list)
    planned_lines: int | None = None
    reads: list[Read] = field(default_factory=list)
    influenced_by: str | None = None
    searches: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    cite: list[str] = field(default_factory=list)
    drop: str | None = None

    @property
    def drop_slug(self) -> str:
        """The slug of the drop file name (``KNOWLEDGE-DROP-<slug>-<date>-[TIME].md``)."""
        from kb.plan.parser import drop_slug

        return drop_slug(self)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("status_line")
        data.pop("status_lines")
        data.pop("planned_lines")
        data.pop("batch")
        return {
            "number": data["number"],
            "title": data["title"],
            "target": data["target"],
            "status": data["status"],
            "completed_at": data["completed_at"],
            "reads": [{"path": r["path"], "note": r["note"], "line": r["line"]} for r in data["reads"]],
            "influenced_by": data["influenced_by"],
            "searches": data["searches"],
            "sections": data["sections"],
            "cite": data["cite"],
            "drop": data["drop"],
            "line": data["line"],
            "batch": self.batch,
            "status_line": self.status_line,
            "status_lines": list(self.status_lines),
            "planned_lines": self.planned_lines,
        }


@dataclass
class Batch:
    number: int
    name: str
    line: int
    parts: list[Part] = field(default_factory=list)
    label: str = ""  # the batch as the plan writes it: "2", or "2a" (whose number is one no other batch has)

    def __post_init__(self) -> None:
        if not self.label:
            self.label = str(self.number)

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "label": self.label,
            "name": self.name,
            "line": self.line,
            "parts": [p.to_dict() for p in self.parts],
        }


@dataclass
class Plan:
    path: str
    title: str | None
    topic: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    @property
    def parts(self) -> list[Part]:
        return [p for b in self.batches for p in b.parts]

    def part(self, number: int) -> Part | None:
        return next((p for p in self.parts if p.number == number), None)

    def batch(self, number: int) -> Batch | None:
        return next((b for b in self.batches if b.number == number), None)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "title": self.title,
            "topic": self.topic,
            "metadata": dict(self.metadata),
            "batches": [b.to_dict() for b in self.batches],
            "problems": [asdict(p) for p in self.problems],
            "repairs": list(self.repairs),
        }
