"""Plain data consolidate hands to the CLI (and to --json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Drop statuses that wrote a knowledge file: "partial" has sections marked empty (kb.records.DropRecord).
WRITTEN = ("complete", "partial")

# Warning kinds, in the order they are shown.
KINDS = (
    "dangling-cite",
    "missing-read",
    "missing-knowledge-file",
    "unaccounted-file",
    "near-duplicate",
    "plan-not-moved",
    "unreadable",
    "broken-file",  # an error, not a warning: see Result.errors
)


@dataclass(slots=True)
class IndexFile:
    """One knowledge file as INDEX.md's template sees it (``f.title``...). An object, not a
    dict: jinja2 reads attributes first, and for 10,000 files a dict's failed attribute
    lookup before each item lookup is most of the rendering time."""

    path: str
    link: str
    title: str
    summary: str
    sections: list[str]
    sources: int
    snippets: int
    results: dict[str, int]  # validation status -> count
    snippet_status: str
    plan: str | None
    plan_path: str | None
    plan_link: str | None
    batch: int | None
    part: int | None
    edited: bool  # the body changed by hand since kb wrote it
    support: str = ""  # "support 44% of 16 drafted sentences" (the LLM writer's citation check), "" where none ran


@dataclass
class Finding:
    """One warning: what is wrong and where."""

    kind: str
    message: str
    path: str | None = None
    plan: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        return cls(kind=str(data.get("kind")), message=str(data.get("message")), path=data.get("path"), plan=data.get("plan"))

    def sort_key(self) -> tuple:
        return (KINDS.index(self.kind) if self.kind in KINDS else len(KINDS), self.message)


@dataclass
class DropDone:
    path: str
    plan: str | None
    batch: int | None
    part: int | None
    knowledge_file: str | None
    status: str
    change: str  # "added" | "changed" | "failed"


@dataclass
class PlanDone:
    path: str
    batches: list[int] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)
    drops: int = 0
    moved_to: str | None = None


@dataclass
class Result:
    workspace: str
    nothing_to_consolidate: bool
    drops: list[DropDone] = field(default_factory=list)
    plans: list[PlanDone] = field(default_factory=list)
    index_changed: bool = False
    skill_changed: bool = False
    skill_name: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    warnings: list[Finding] = field(default_factory=list)
    # Knowledge files kb could not read as they were meant (front matter never closed, not
    # UTF-8, front matter that is not YAML): indexed as well as they could be, and committed
    # unless --strict.
    errors: list[Finding] = field(default_factory=list)
    commit: dict[str, Any] | None = None
    commit_skipped: str | None = None  # why no commit was made, when one was asked for
    seconds: float = 0.0
    # A dry look (--no-commit): nothing was written; what would change, and where its previews are.
    dry_run: bool = False
    previews: dict[str, str] = field(default_factory=dict)  # "INDEX.md" -> .kb/consolidate/preview/INDEX.md

    @property
    def added(self) -> list[str]:
        return [d.knowledge_file for d in self.drops if d.change == "added" and d.knowledge_file]

    @property
    def changed(self) -> list[str]:
        return [d.knowledge_file for d in self.drops if d.change == "changed" and d.knowledge_file]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "nothing_to_consolidate": self.nothing_to_consolidate,
            "drops": [asdict(d) for d in self.drops],
            "plans": [asdict(p) for p in self.plans],
            "knowledge": {"added": self.added, "changed": self.changed},
            "index": {"path": "INDEX.md", "changed": self.index_changed},
            "skill": {"path": "SKILL.md", "changed": self.skill_changed, "name": self.skill_name},
            "totals": self.totals,
            "warnings": [w.to_dict() for w in self.warnings],
            "errors": [e.to_dict() for e in self.errors],
            "commit": self.commit,
            "commit_skipped": self.commit_skipped,
            "dry_run": self.dry_run,
            "previews": self.previews,
            "seconds": round(self.seconds, 3),
        }
