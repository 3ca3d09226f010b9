"""Read what the other commands wrote (plans, knowledge files, drops, snippets/results.json) into a Report.

Nothing is inferred beyond those records: "present" and "cited" use the check stage's own
parsing, snippet outcomes come from results.json only, source kinds are the recorded ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kb.consolidate.scan import body_source_kinds, knowledge_ref, walk, walk_drops
from kb.engine.check import (CITATION, EMPTY, UNCITED, curated, headings, norm_heading, points_only, prose_lines,
                             section_state)
from kb.errors import KbError
from kb.mdblocks import parse_blocks
from kb.plan import Part, Plan, load_plan
from kb.records import KnowledgeMeta, read_drop, read_knowledge
from kb.report.links import BrokenLink, broken_links, excerpts, relative_links, repeated_excerpts
from kb.report.model import (
    BatchProgress,
    Citation,
    DropState,
    FileReport,
    MissingSection,
    PlanProgress,
    Report,
    SnippetProblem,
)
from kb.snippets.extract import extract_snippets
from kb.snippets.results import FAILING, load_results
from kb.workspace import Workspace

COMPLETED = "plans/completed/"
# SourceRef.kind (kb/records.py) -> the report's groups. "doc" is a package docstring and "folder" a
# kb.toml [corpus].folders file: both are local documentation. Unknown kinds stay visible as "other".
KIND_GROUPS = {"doc": "local", "folder": "local", "knowledge": "knowledge", "web": "web"}
# Level-2 headings whose list defines the numbered sources: "[n]" there is a definition, not a citation.
SOURCE_LIST_HEADINGS = {"sources", "references", "bibliography"}
_SECTION_HEADING = re.compile(r"^section\s+\d+\s*:")


def collect_report(workspace: Workspace) -> Report:
    """The quality report of a workspace."""
    root = workspace.root
    knowledge = sorted(walk(root, "knowledge")) if workspace.default_layout else workspace.knowledge_files()
    results = load_results(root)
    report = Report(root=str(root), results_generated=results.get("generated"))

    plans = _load_plans(root, report, None if workspace.default_layout else
                        workspace.layout_files("plans") + workspace.layout_files("completed"))
    root_name = workspace.knowledge_prefix.rstrip("/") or "."
    targets = _targets(plans, root_name)
    completed = None if workspace.default_layout else set(workspace.layout_files("completed"))
    report.plans = [_progress(rel, plan, set(knowledge), root_name, completed) for rel, plan in plans]

    by_file: dict[str, list[dict]] = {}
    for row in results.get("snippets") or []:
        if isinstance(row, dict) and row.get("file"):
            by_file.setdefault(_results_file(str(row["file"]), workspace.knowledge_prefix), []).append(row)

    drops = _drops(root, report, set(knowledge), None if workspace.default_layout else workspace.layout_files("drops"),
                   workspace.knowledge_prefix.rstrip("/") or ".")
    shown: list[tuple[str, list[str]]] = []  # each file's examples and quotes, to find those repeated
    for rel in knowledge:
        try:
            entry, text, found = _file_report(root, rel, targets.get(rel, []))
        except OSError as exc:  # removed or unreadable since the listing (another command at work)
            report.files.append(FileReport(file=rel, title=Path(rel).stem, front_matter=False, error=str(exc)))
            continue
        _add_snippets(entry, text, by_file.get(rel, []))
        entry.drops = drops.get(rel, [])
        report.files.append(entry)
        shown.append((rel, found))
    repeated = repeated_excerpts(shown)
    for entry in report.files:
        entry.excerpts_repeated = repeated.get(entry.file, [])
    for page in (workspace.index_path, workspace.skill_path):  # consolidate's pages link into the tree too
        try:
            text = page.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        rel = page.relative_to(root).as_posix()
        report.page_links[rel] = len(relative_links(text))
        report.page_broken_links[rel] = broken_links(root, rel, text)
    return report


# -- plans -----------------------------------------------------------------


def _load_plans(root: Path, report: Report, listed: list[str] | None = None) -> list[tuple[str, Plan]]:
    """Every plan under plans/ and plans/completed/ (or ``listed``, an adopted layout's): active
    ones first, then completed, by path."""
    rels = listed if listed is not None else sorted(walk(root, "plans"), key=lambda rel: (rel.startswith(COMPLETED), rel))
    out = []
    for rel in rels:
        try:
            plan = load_plan(root / rel, rel)
        except (KbError, OSError) as exc:
            report.skipped_plans.append({"path": rel, "reason": str(exc)})
            continue
        if not plan.parts:
            report.skipped_plans.append({"path": rel, "reason": "no PART found: not a plan"})
            continue
        out.append((rel, plan))
    return out


def _targets(plans: list[tuple[str, Plan]], root: str = "knowledge") -> dict[str, list[tuple[str, Part]]]:
    """Workspace path under the knowledge ``root`` -> the (plan, PART) pairs that target it, in plan order."""
    out: dict[str, list[tuple[str, Part]]] = {}
    for rel, plan in plans:
        for part in plan.parts:
            target = knowledge_ref(part.target, root)
            if target:
                out.setdefault(target, []).append((rel, part))
    return out


def _progress(rel: str, plan: Plan, knowledge: set[str], root: str = "knowledge", completed: set[str] | None = None) -> PlanProgress:
    """A plan's PARTs by batch and status; ``completed``: the plans an adopted layout files as completed."""
    filed = rel.startswith(COMPLETED) if completed is None else rel in completed
    progress = PlanProgress(path=rel, title=plan.title, completed=filed)
    for batch in plan.batches:
        counts = BatchProgress(number=batch.number, name=batch.name)
        for part in batch.parts:
            counts.total += 1
            setattr(counts, part.status, getattr(counts, part.status) + 1)
            target = knowledge_ref(part.target, root)
            if part.status == "done" and target and target not in knowledge:
                progress.done_without_file.append(target)
        progress.batches.append(counts)
    for key in ("total", "done", "failed", "pending"):
        setattr(progress, key, sum(getattr(b, key) for b in progress.batches))
    return progress


def _choose_part(meta: KnowledgeMeta, candidates: list[tuple[str, Part]]) -> tuple[str, Part] | None:
    """The PART that wrote the file: the one its front matter names (a plan moved to completed/ keeps
    its file name), a done one before a pending one (a reset copy of a plan), else the first."""
    if not candidates:
        return None
    named = Path(str(meta.plan)).name if meta.plan else None

    def rank(candidate: tuple[str, Part]) -> tuple[bool, bool, bool]:
        rel, part = candidate
        same_plan = named is not None and Path(rel).name == named
        return (same_plan and part.number == meta.part, same_plan, part.status == "done")

    best = max(rank(c) for c in candidates)
    return next(c for c in candidates if rank(c) == best)


# -- knowledge files ---------------------------------------------------------


def _read(path: Path) -> tuple[KnowledgeMeta, str, str, bool, str | None]:
    """(meta, body, full text, has front matter, error) even when the front matter is broken."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = read_knowledge(path)
        # Without front matter the body is the file as it is (the reader drops its last newline):
        # the same text its snippets are extracted from, so mdblocks parses it once for both.
        return doc.meta, doc.body if doc.has_front_matter else text, text, doc.has_front_matter, None
    except (yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:
        # Unreadable front matter: report the body as it stands and say why its sources are unknown.
        body = text
        if text.startswith("---\n") and (end := text.find("\n---\n", 3)) > 0:
            body = text[end + 5:]
        reason = " ".join(str(exc).split())[:200]
        return KnowledgeMeta(title=path.stem), body, text, False, f"front matter unreadable: {reason}"


def _file_report(root: Path, rel: str, candidates: list[tuple[str, Part]]) -> tuple[FileReport, str, list[str]]:
    meta, body, text, has_fm, error = _read(root / rel)
    entry = FileReport(file=rel, title=" ".join(meta.title.split()), front_matter=has_fm, error=error)
    chosen = _choose_part(meta, candidates)
    if chosen is not None:
        entry.plan, part = chosen[0], chosen[1]
        entry.part, entry.batch = part.number, part.batch
        entry.sections_planned = len(part.sections)
    # Line numbers of the body -> lines of the file (front matter above it).
    start = text.find(body) if body else -1
    offset = text.count("\n", 0, start) if start > 0 else 0

    # mdblocks' parser, shared: a file without front matter is parsed once for this and its snippets.
    tokens = parse_blocks(body)
    heads = headings(tokens)
    lines = body.splitlines()
    level2 = {norm_heading(t): line for level, t, line in heads if level == 2}

    def span(line: int) -> tuple[int, int]:
        # As the check stage: a section runs to the next heading of level 1 or 2.
        following = [h for h in heads if h[2] > line and h[0] <= 2]
        return line + 1, following[0][2] if following else len(lines)

    cited_lines: dict[int, set[int]] = {}  # 0-based body lines holding a citation -> the source ids cited there
    excluded: set[int] = set()
    for level, t, line in heads:
        if level == 2 and norm_heading(t) in SOURCE_LIST_HEADINGS:
            excluded.update(range(*span(line)))
    ids = {s.id for s in meta.sources}
    kinds = {s.id: s.kind for s in meta.sources}
    for n, prose in prose_lines(body, tokens):
        if n - 1 in excluded:
            continue
        for match in CITATION.finditer(prose):
            for number in re.findall(r"\d+", match.group(1)):
                cited_lines.setdefault(n - 1, set()).add(int(number))
                entry.citations += 1
                if int(number) not in ids:
                    entry.citations_unresolved += 1
                    entry.unresolved.append(Citation(number=int(number), line=n + offset))

    if chosen is not None:
        sections = [(s.number, s.title, level2.get(norm_heading(f"Section {s.number}: {s.title}"))) for s in chosen[1].sections]
    else:
        # Nothing planned: the file's own "## Section N: ..." headings are its sections.
        sections = [(0, t, line) for level, t, line in heads if level == 2 and _SECTION_HEADING.match(norm_heading(t))]
    for number, title, line in sections:
        if line is None:
            entry.missing_sections.append(MissingSection(number, title, "no heading"))
            continue
        first, end = span(line)
        if not "\n".join(lines[first:end]).strip():
            entry.missing_sections.append(MissingSection(number, title, "no text"))
            continue
        entry.sections_present += 1
        cited = set().union(*(cited_lines.get(i, set()) for i in range(first, end)))
        if cited:
            entry.sections_cited += 1
            # It quotes nothing of its own: it points to the section (another file's, or one above) quoting its answer.
            if points_only("\n".join(lines[first:end]), kinds):
                entry.sections_linked += 1
            if curated("\n".join(lines[first:end])):
                entry.sections_curated += 1
        # Filled (cited), marked empty (research found nothing), or neither: uncited text (issue 19).
        state = section_state("\n".join(lines[first:end]))
        if state == EMPTY:
            entry.sections_empty.append(title)
        elif state == UNCITED:
            entry.sections_uncited_list.append(title)

    entry.links = len(relative_links(body, tokens))
    entry.broken_links = [BrokenLink(b.line + offset, b.target, b.why) for b in broken_links(root, rel, body, tokens)]

    for source in meta.sources:
        group = KIND_GROUPS.get(source.kind, "other")
        entry.sources[group] += 1
        entry.source_kinds[source.kind] = entry.source_kinds.get(source.kind, 0) + 1
    if not meta.sources:  # a file of the original shape: its "## Sources" list, counted as INDEX.md counts it
        for kind in body_source_kinds(body):
            entry.sources[KIND_GROUPS.get(kind, "other")] += 1
            entry.source_kinds[kind] = entry.source_kinds.get(kind, 0) + 1
    return entry, text, excerpts(body, tokens)


# -- snippets ----------------------------------------------------------------


def _results_file(value: str, prefix: str = "knowledge/") -> str:
    """results.json's file field as a workspace-relative path (older results name it relative to the
    knowledge root, ``prefix``; as kb/serve/results.py reads it)."""
    rel = value.replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel if rel.startswith(prefix) else f"{prefix}{rel}"


def _add_snippets(entry: FileReport, text: str, rows: list[dict]) -> None:
    """Match each fence of the file to its result by content hash (nearest line for duplicates)."""
    for snippet in extract_snippets(entry.file, text):
        same = [r for r in rows if r.get("hash") == snippet.hash]
        if not same:
            # Never run, or run on an older version of this code: either way this code has no result.
            entry.snippets["not_run"] += 1
            if any(_int(r.get("line")) == snippet.line for r in rows):
                entry.snippets_stale += 1
            continue
        row = min(same, key=lambda r: abs((_int(r.get("line")) or 0) - snippet.line))
        status = str(row.get("status") or "")
        reason = row.get("reason") or None
        if status == "pass":
            entry.snippets["pass"] += 1
        elif status in ("defines-only", "fragment"):
            entry.snippets[status.replace("-", "_")] += 1
        elif status in FAILING:
            entry.snippets["fail"] += 1
            entry.snippet_problems.append(SnippetProblem(line=snippet.line, status=status, reason=reason))
        elif status in ("skip", "not-executable"):
            entry.snippets["skip"] += 1
            key = str(reason or status)
            entry.skip_reasons[key] = entry.skip_reasons.get(key, 0) + 1
        else:
            entry.snippets["not_run"] += 1  # a status this report does not know: not a result it can vouch for


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- drops -------------------------------------------------------------------


def _drops(root: Path, report: Report, knowledge: set[str], listed: list[str] | None = None,
           knowledge_root: str = "knowledge") -> dict[str, list[DropState]]:
    """knowledge/... path -> its drops; drops naming no file of knowledge/ go to report.orphan_drops.
    ``listed``: an adopted layout's drops; ``knowledge_root``: where their targets are read."""
    out: dict[str, list[DropState]] = {}
    for rel in sorted(walk_drops(root)) if listed is None else listed:
        try:
            drop = read_drop(root / rel)
        except (OSError, yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:
            report.drops_unreadable.append({"path": rel, "reason": " ".join(str(exc).split())[:200]})
            continue
        state = DropState(path=rel, status=drop.status, consolidated=str(drop.consolidated) if drop.consolidated else None,
                          support_rate=(drop.research.get("support") or {}).get("rate"))
        target = knowledge_ref(drop.knowledge_file, knowledge_root, knowledge.__contains__, root.name)
        if target in knowledge:
            out.setdefault(target, []).append(state)
        else:
            report.orphan_drops.append(state)
    return out
