"""The data of a quality report: per knowledge file, per plan, and totals (plain dataclasses)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from kb.report.links import BrokenLink

REPORT_VERSION = 1
# Source kinds as the report groups them; SourceRef.kind values map onto these (see collect.SOURCE_GROUPS).
SOURCE_GROUPS = ("local", "knowledge", "web", "other")
# defines_only: ran, but only defined things nothing called; fragment: an excerpt that cannot stand alone.
SNIPPET_STATES = ("pass", "defines_only", "fail", "fragment", "skip", "not_run")


@dataclass
class MissingSection:
    """A planned section the file lacks: no heading, or a heading with no text under it."""

    number: int
    title: str
    why: str  # "no heading" | "no text"


@dataclass
class Citation:
    """A citation ``[n]`` that names no source of the file's front matter."""

    number: int
    line: int  # 1-based line of the file


@dataclass
class SnippetProblem:
    """A snippet that ran and did not pass (fail, timeout, error)."""

    line: int
    status: str
    reason: str | None


@dataclass
class DropState:
    path: str
    status: str  # "complete" | "failed"
    consolidated: str | None  # when the oracle consolidated it; None while it waits
    # Share of the writer's drafted factual sentences the cited passages supported (LLM engines); None: not checked.
    support_rate: float | None = None


@dataclass
class FileReport:
    """What the report knows about one knowledge file."""

    file: str  # workspace-relative, knowledge/...
    title: str
    front_matter: bool
    plan: str | None = None  # the plan whose PART targets this file (None: no PART does)
    part: int | None = None
    batch: int | None = None
    sections_planned: int | None = None  # None: no PART targets the file, so nothing is planned
    sections_present: int = 0
    sections_cited: int = 0  # of the present sections, those with at least one citation
    sections_linked: int = 0  # of those, the ones that only point to the section (another file's, or one above) quoting the answer
    sections_curated: int = 0  # ... and the ones filled with a passage a reviewer chose in curation.toml (kb.curation)
    sections_empty: list[str] = field(default_factory=list)  # present, marked empty: research found nothing
    sections_uncited_list: list[str] = field(default_factory=list)  # present, neither cited nor marked empty
    missing_sections: list[MissingSection] = field(default_factory=list)
    citations: int = 0
    citations_unresolved: int = 0
    unresolved: list[Citation] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCE_GROUPS, 0))
    source_kinds: dict[str, int] = field(default_factory=dict)  # as recorded (doc, folder, knowledge, web...)
    snippets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SNIPPET_STATES, 0))
    snippets_stale: int = 0  # not run: a result exists for an older version of the code at that line
    skip_reasons: dict[str, int] = field(default_factory=dict)
    snippet_problems: list[SnippetProblem] = field(default_factory=list)
    drops: list[DropState] = field(default_factory=list)
    links: int = 0  # relative links and images (kb.report.links)
    broken_links: list[BrokenLink] = field(default_factory=list)  # 1-based lines of the file
    excerpts_repeated: list[str] = field(default_factory=list)  # examples or quotes an earlier file already shows
    error: str | None = None  # the file could not be read

    @property
    def citations_resolved(self) -> int:
        return self.citations - self.citations_unresolved

    def to_dict(self) -> dict:
        data = asdict(self)
        data["citations_resolved"] = self.citations_resolved
        data["sections_filled"] = self.sections_filled
        return data

    @property
    def sections_filled(self) -> int:
        """Present sections with a citation (filled from a source)."""
        return self.sections_cited


@dataclass
class BatchProgress:
    number: int
    name: str
    total: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0


@dataclass
class PlanProgress:
    """A plan's PARTs by status, in total and per batch."""

    path: str
    title: str | None
    completed: bool  # filed under plans/completed/
    total: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    batches: list[BatchProgress] = field(default_factory=list)
    done_without_file: list[str] = field(default_factory=list)  # targets of done PARTs that are not on disk

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    """The whole report: files, plans, totals, and the problems --strict gates on."""

    root: str
    results_generated: str | None  # snippets/results.json's "generated" (None: no results yet)
    files: list[FileReport] = field(default_factory=list)
    plans: list[PlanProgress] = field(default_factory=list)
    skipped_plans: list[dict] = field(default_factory=list)  # Markdown under plans/ that is no plan
    drops_unreadable: list[dict] = field(default_factory=list)
    orphan_drops: list[DropState] = field(default_factory=list)  # drops whose target file is not in knowledge/
    # INDEX.md and SKILL.md (consolidate's pages): their relative links, and those that lead nowhere.
    page_links: dict[str, int] = field(default_factory=dict)
    page_broken_links: dict[str, list[BrokenLink]] = field(default_factory=dict)

    def totals(self) -> dict:
        """Sums over the files (and drops and plans), in the shape --json prints."""
        files = self.files
        planned = [f for f in files if f.sections_planned is not None]
        sources = dict.fromkeys(SOURCE_GROUPS, 0)
        kinds: dict[str, int] = {}
        snippets = dict.fromkeys(SNIPPET_STATES, 0)
        reasons: dict[str, int] = {}
        for f in files:
            for key, n in f.sources.items():
                sources[key] = sources.get(key, 0) + n
            for key, n in f.source_kinds.items():
                kinds[key] = kinds.get(key, 0) + n
            for key, n in f.snippets.items():
                snippets[key] = snippets.get(key, 0) + n
            for key, n in f.skip_reasons.items():
                reasons[key] = reasons.get(key, 0) + n
        all_drops = [d for f in files for d in f.drops] + list(self.orphan_drops)
        return {
            "files": len(files),
            "files_without_front_matter": sum(1 for f in files if not f.front_matter),
            "files_without_plan": sum(1 for f in files if f.sections_planned is None),
            "files_unreadable": sum(1 for f in files if f.error),
            "sections_planned": sum(f.sections_planned or 0 for f in planned),
            "sections_present": sum(f.sections_present for f in planned),
            "sections_missing": sum(len(f.missing_sections) for f in planned),
            "sections_unplanned": sum(f.sections_present for f in files if f.sections_planned is None),
            "sections_cited": sum(f.sections_cited for f in files),
            "sections_uncited": sum(f.sections_present - f.sections_cited for f in files),
            # Issue 19: every present section is filled (cited), marked empty, or neither (a --strict problem).
            "sections_filled": sum(f.sections_filled for f in files),
            "sections_linked": sum(f.sections_linked for f in files),
            "sections_curated": sum(f.sections_curated for f in files),
            "sections_empty": sum(len(f.sections_empty) for f in files),
            "sections_unsupported": sum(len(f.sections_uncited_list) for f in files),
            "citations": sum(f.citations for f in files),
            "citations_resolved": sum(f.citations_resolved for f in files),
            "citations_unresolved": sum(f.citations_unresolved for f in files),
            "links": sum(f.links for f in files) + sum(self.page_links.values()),
            "links_broken": sum(len(f.broken_links) for f in files) + sum(map(len, self.page_broken_links.values())),
            "excerpts_repeated": sum(len(f.excerpts_repeated) for f in files),
            "sources": sources,
            "source_kinds": dict(sorted(kinds.items())),
            "snippets": {"total": sum(snippets.values()), **snippets},
            "snippets_stale": sum(f.snippets_stale for f in files),
            "skip_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "drops": {
                "total": len(all_drops),
                "consolidated": sum(1 for d in all_drops if d.consolidated),
                "not_consolidated": sum(1 for d in all_drops if not d.consolidated),
                "failed": sum(1 for d in all_drops if d.status == "failed"),
                "without_file": len(self.orphan_drops),
                "unreadable": len(self.drops_unreadable),
            },
            "parts": {key: sum(getattr(p, key) for p in self.plans) for key in ("total", "done", "failed", "pending")},
        }

    def problems(self) -> list[str]:
        """What --strict fails on: missing planned sections, unresolved citations, broken relative links,
        failed snippets, unreadable files, and PARTs marked done whose file is gone."""
        out: list[str] = []
        for f in self.files:
            if f.error:
                out.append(f"{f.file}: could not be read ({f.error})")
            for m in f.missing_sections:
                out.append(f'{f.file}: planned "Section {m.number}: {m.title}" is missing ({m.why})')
            for c in f.unresolved:
                out.append(f"{f.file}:{c.line}: citation [{c.number}] names no source in the front matter")
            for b in f.broken_links:
                out.append(f"{f.file}:{b.line}: link {b.target} is broken ({b.why})")
            for title in f.sections_uncited_list:
                out.append(f'{f.file}: section "{title}" is neither filled with a citation nor marked empty')
            for s in f.snippet_problems:
                out.append(f"{f.file}:{s.line}: snippet {s.status}" + (f" ({s.reason})" if s.reason else ""))
        for page, broken in self.page_broken_links.items():
            for b in broken:
                out.append(f"{page}:{b.line}: link {b.target} is broken ({b.why})")
        for plan in self.plans:
            for target in plan.done_without_file:
                out.append(f"{plan.path}: a done PART's file {target} is not there")
        return out

    def to_dict(self) -> dict:
        """The --json document; keys are stable (new keys may be added, none renamed)."""
        return {
            "version": REPORT_VERSION,
            "workspace": self.root,
            "results_generated": self.results_generated,
            "files": [f.to_dict() for f in self.files],
            "totals": self.totals(),
            "plans": [p.to_dict() for p in self.plans],
            "skipped_plans": list(self.skipped_plans),
            "orphan_drops": [asdict(d) for d in self.orphan_drops],
            "unreadable_drops": list(self.drops_unreadable),
            "pages": {page: {"links": n, "broken_links": [asdict(b) for b in self.page_broken_links.get(page, [])]}
                      for page, n in self.page_links.items()},
            "problems": self.problems(),
        }
