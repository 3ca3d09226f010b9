"""The records stages hand to each other on disk: knowledge-file front matter and drops.

run-plan writes them, consolidate, report and serve read them. Both also read
the older shape of the knowledge bases this format came from: knowledge files
without front matter (indexed by their first heading) and drops written as
bold-key lines (``**Part**: 5``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from kb import drop_keys, records_yaml
from kb.fsutil import atomic_write_text, sha256_text

DROP_PREFIX = "KNOWLEDGE-DROP-"


def now_iso() -> str:
    """UTC timestamp, seconds precision, for front matter."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class SourceRef:
    """One numbered source a knowledge file cites as ``[id]``."""

    id: int
    title: str
    kind: str  # "doc" (package docstring), "knowledge" (the tree), "folder" (kb.toml folders), "web"
    locator: str  # module path, workspace-relative path, or URL
    accessed: str | None = None


def _fields(record: Any) -> dict[str, Any]:
    """A record's fields as a dict to dump: shallow (``asdict`` deep-copies, and cost a drop stage a tenth of its time)."""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def _source_dicts(sources: list[SourceRef]) -> list[dict[str, Any]]:
    return [{k: v for k, v in vars(s).items() if v is not None} for s in sources]


@dataclass
class KnowledgeMeta:
    """Front matter of a knowledge file written by kb."""

    title: str
    plan: str | None = None
    batch: int | None = None
    part: int | None = None
    sections: list[str] = field(default_factory=list)
    sources: list[SourceRef] = field(default_factory=list)
    engine: str | None = None
    model: str | None = None
    created: str | None = None
    content_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = _fields(self)
        data["sources"] = _source_dicts(self.sources)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KnowledgeMeta":
        known = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        known["sources"] = [
            SourceRef(
                id=int(s.get("id", i + 1)),
                title=str(s.get("title", "")),
                kind=str(s.get("kind", "web" if str(s.get("url", "")).startswith("http") else "doc")),
                locator=str(s.get("locator") or s.get("url") or s.get("path") or ""),
                accessed=s.get("accessed"),
            )
            for i, s in enumerate(data.get("sources") or [])
            if isinstance(s, dict)
        ]
        known["sections"] = [str(s) for s in data.get("sections") or []]
        known.setdefault("title", "")
        return cls(**known)


@dataclass
class KnowledgeDoc:
    """A knowledge file as read from disk."""

    path: Path
    meta: KnowledgeMeta
    body: str
    has_front_matter: bool
    raw_body: str | None = None  # the body exactly as stored (``body`` is stripped by python-frontmatter)

    @property
    def edited_by_hand(self) -> bool:
        """True when the body no longer matches the hash kb recorded when it wrote it."""
        if not self.meta.content_hash:
            return False
        # write_knowledge hashes the body as written (ending in a newline); ``body`` comes back stripped.
        candidates = {self.body, self.body + "\n"} | ({self.raw_body} if self.raw_body is not None else set())
        return all(sha256_text(c) != self.meta.content_hash for c in candidates)


def _first_heading(body: str) -> str | None:
    for line in body.splitlines():
        match = re.match(r"^#\s+(.+?)\s*#*\s*$", line)
        if match:
            return match.group(1)
    return None


def read_knowledge(path: Path) -> KnowledgeDoc:
    """Read a knowledge file, with or without kb front matter."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    post = frontmatter.loads(text)
    has_fm = bool(post.metadata)
    meta = KnowledgeMeta.from_dict(post.metadata) if has_fm else KnowledgeMeta(title="")
    if not meta.title:
        meta.title = _first_heading(post.content) or Path(path).stem
    if not meta.sections:
        meta.sections = [m.group(1).strip() for m in re.finditer(r"(?m)^##\s+(.+?)\s*$", post.content)]
    raw_body = None
    if has_fm and text.startswith("---\n") and (end := text.find("\n---\n", 3)) > 0:
        raw_body = text[end + 5:]
        raw_body = raw_body[1:] if raw_body.startswith("\n") else raw_body  # render_with_front_matter's blank line
    return KnowledgeDoc(path=Path(path), meta=meta, body=post.content, has_front_matter=has_fm, raw_body=raw_body)


# libyaml's emitter writes the same text as PyYAML's pure-Python one, about 6x faster
# (two front matters per PART: a run-plan's drop stage spent most of its time here).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(data: Any, width: int = 1000, sort_keys: bool = False) -> str:
    """``yaml.safe_dump`` as kb writes front matter: unicode as is, keys in the given order."""
    if width >= 1000 and not sort_keys:
        fast = records_yaml.dump(data)  # the same bytes, for the records kb writes; None for anything else
        if fast is not None:
            return fast
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=sort_keys, allow_unicode=True, width=width)


def render_with_front_matter(meta: dict[str, Any], body: str) -> str:
    """YAML front matter + body, the way every kb-written Markdown file looks."""
    head = dump_yaml(meta).strip()
    if not body.endswith("\n"):
        body += "\n"
    return f"---\n{head}\n---\n\n{body}"


def write_knowledge(path: Path, meta: KnowledgeMeta, body: str, durable: bool = True) -> KnowledgeMeta:
    """Write a knowledge file atomically, stamping the body's content hash into its front matter
    (``durable``: see kb.fsutil.atomic_write_bytes)."""
    if not body.endswith("\n"):
        body += "\n"
    meta.content_hash = sha256_text(body)
    meta.created = meta.created or now_iso()
    atomic_write_text(path, render_with_front_matter(meta.to_dict(), body), durable=durable)
    return meta


@dataclass
class DropRecord:
    """A KNOWLEDGE DROP: what one runner task did, for the oracle to consolidate."""

    plan: str | None
    batch: int | None
    part: int | None
    title: str
    status: str  # "complete" (every planned section filled) | "partial" (some marked empty) | "failed"
    knowledge_file: str | None  # workspace-relative, e.g. knowledge/performance/04-x.md
    created: str
    sections_written: list[str] = field(default_factory=list)  # every planned section the file has, filled or empty
    # ... of those, the ones research found nothing for: each says so in one line, never filled from a model's memory
    sections_empty: list[str] = field(default_factory=list)
    # ... and the filled ones that only point to the section (another file's, or one above) quoting their answer
    sections_pointing: list[str] = field(default_factory=list)
    # ... and the filled ones whose passage a reviewer chose (curation.toml) where research ranked it below its bar
    sections_curated: list[str] = field(default_factory=list)
    sources_used: list[SourceRef] = field(default_factory=list)
    snippets_written: int = 0
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None
    engine: str | None = None
    model: str | None = None
    tokens: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0})
    cost_usd: float | None = None
    seconds: float | None = None
    # What research did and what the file stands on (web research and the LLM engines): searched, read,
    # refused (URLs not fetched), evidence (the passages [n] cites), support (checked sentences).
    research: dict[str, Any] = field(default_factory=dict)
    consolidated: str | None = None
    path: Path | None = None  # where it was read from; not written

    def front_matter(self) -> dict[str, Any]:
        data = _fields(self)
        data.pop("path")
        data["sources_used"] = _source_dicts(self.sources_used)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> "DropRecord":
        fields = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data and k != "path"}
        fields["sources_used"] = KnowledgeMeta.from_dict({"sources": data.get("sources_used") or []}).sources
        fields.setdefault("title", "")
        fields.setdefault("status", "complete")
        fields.setdefault("created", "")
        for key in ("sections_written", "sections_empty", "sections_pointing", "sections_curated", "warnings"):
            fields[key] = list(fields.get(key) or [])
        fields["tokens"] = dict(fields.get("tokens") or {"input": 0, "output": 0})
        fields["research"] = dict(fields.get("research") or {})
        fields["snippets_written"] = int(fields.get("snippets_written") or 0)
        fields.setdefault("plan", None)
        fields.setdefault("batch", None)
        fields.setdefault("part", None)
        fields.setdefault("knowledge_file", None)
        return cls(path=path, **fields)


def drop_filename(slug: str, when: datetime) -> str:
    """``KNOWLEDGE-DROP-<slug>-<YYYY-MM-DD>-<HHMM>.md``."""
    return f"{DROP_PREFIX}{slug}-{when:%Y-%m-%d}-{when:%H%M}.md"


def render_drop_body(drop: DropRecord) -> str:
    """The human-readable body, in the bold-key shape older tools read."""
    status = {"complete": "COMPLETE ✓", "partial": f"PARTIAL ({len(drop.sections_empty)} of "
              f"{len(drop.sections_written)} sections empty)"}.get(drop.status, "FAILED ✗")
    lines = [
        f"# KNOWLEDGE DROP: {drop.title}",
        "",
        f"**Created**: {drop.created}",
        f"**Part**: {drop.part}",
        f"**Batch**: {drop.batch}",
        f"**Plan**: {drop.plan}",
        f"**Target File**: {drop.knowledge_file}",
        f"**Status**: {status}",
        f"**Engine**: {drop.engine}" + (f" ({drop.model})" if drop.model else ""),
        "",
    ]
    if drop.reason:
        lines += ["## Failure", "", drop.reason, ""]
    lines += ["## What Was Created", ""]
    if drop.status in ("complete", "partial"):
        empty, pointing = set(drop.sections_empty), set(drop.sections_pointing)
        filled = len(drop.sections_written) - len(empty & set(drop.sections_written))
        points = len(pointing & set(drop.sections_written))
        chosen = set(drop.sections_curated) & set(drop.sections_written)
        also = [f"{points} of them only pointing to the section that quotes their answer"] if points else []
        also += [f"{len(chosen)} with a passage a reviewer chose in curation.toml"] if chosen else []
        also = f" ({'; '.join(also)})" if also else ""
        lines.append(f"`{drop.knowledge_file}` with {filled} of {len(drop.sections_written)} planned sections filled{also} "
                     f"and {drop.snippets_written} code snippets:")
        lines.append("")
        lines += [f"- {s}" + (" (empty: research found nothing)" if s in empty else
                              " (points to the section that quotes its answer)" if s in pointing else
                              " (a reviewer chose its passage)" if s in chosen else "")
                  for s in drop.sections_written]
    else:
        lines.append("Nothing: the PART failed (see above); its plan checkbox stays unticked.")
    lines += ["", "## Sources Cited", ""]
    lines += [f"- [{s.id}] {s.title} ({s.kind}: {s.locator})" for s in drop.sources_used] or ["- none"]
    lines += _research_lines(drop.research)
    if drop.warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {w}" for w in drop.warnings]
    return "\n".join(lines) + "\n"


def _research_lines(research: dict[str, Any]) -> list[str]:
    """The readable part of a drop's research record: support, refused URLs, the evidence passages."""
    lines: list[str] = []
    support = research.get("support") or {}
    if support.get("sentences"):
        lines += ["", "## Citation Support", "",
                  f"{support.get('supported', 0)} of {support['sentences']} factual sentences in the writer's drafts were "
                  f"supported by the passages they cite ({support.get('rate') or 0:.0%}); sent back to the writer with "
                  f"the reason: {support.get('sent_back', 0)}; removed: {support.get('removed', 0)}; the file keeps "
                  f"{support.get('kept', 0)}, each cited and checked."]
        if support.get("judged"):
            lines[-1] += (f" The model, asked as judge, checked {support['judged']} sentence(s) of the drafts and "
                          f"rewrites that the lexical check passed and found {support.get('judge_rejected', 0)} not "
                          "supported.")
    relevance = research.get("relevance") or {}
    if relevance.get("sections"):
        lines += ["", f"Relevance: for {relevance['sections']} section(s) research left empty, the model read the "
                      f"{relevance.get('passages', 0)} passage(s) research ranked below its bar and gave "
                      f"{relevance.get('accepted', 0)} it judged on topic to their sections' writer."]
    smooth = research.get("smooth") or {}
    if smooth.get("sections"):
        lines += ["", f"Whole-file pass: {smooth.get('rewritten', 0)} of {smooth['sections']} sections reworded and "
                      f"checked again ({smooth.get('removed', 0)} sentence(s) its passages do not support removed); "
                      f"{smooth.get('kept_as_was', 0)} kept as checked before."]
    if research.get("refused"):
        lines += ["", "## Refused URLs", ""]
        lines += [f"- {r.get('url')}: {r.get('reason')}" for r in research["refused"]]
    if research.get("evidence"):
        lines += ["", "## Evidence", ""]
        for e in research["evidence"]:
            text = " ".join(str(e.get("text", "")).split())
            lines.append(f"- [{e.get('id')}] {e.get('source')} ({e.get('locator')}): {text[:300]}{'...' if len(text) > 300 else ''}")
    return lines


def write_drop(path: Path, drop: DropRecord, durable: bool = True) -> None:
    """Write a drop atomically (front matter + readable body)."""
    atomic_write_text(path, render_with_front_matter(drop.front_matter(), render_drop_body(drop)), durable=durable)


def read_drop(path: Path) -> DropRecord:
    """Read a drop written by kb, or one in the older bold-key form."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    post = frontmatter.loads(text)
    return drop_from_parts(dict(post.metadata) or None, post.content, Path(path))


def drop_from_parts(meta: dict[str, Any] | None, body: str, path: Path) -> DropRecord:
    """A drop from its front matter (None: it has none) and its body. The body's bold keys
    are what the person wrote: where they name the knowledge file, they win over the front
    matter, and they fill every field the front matter leaves empty (a stamp an older kb
    wrote from a misread, ``knowledge_file: null``, ``created: ''``, hides nothing)."""
    if not meta:
        return bold_drop(body, path)
    drop = DropRecord.from_dict(meta, path=path)
    if drop.title and drop.knowledge_file and drop_keys.parse_when(str(drop.created or "")):
        return drop  # what kb wrote (its body says the same): no bold key left to read
    bold = bold_drop(body, path)
    if bold.knowledge_file:
        drop.knowledge_file = bold.knowledge_file
    if not drop_keys.parse_when(str(drop.created or "")) and bold.created:
        drop.created = bold.created
    for name in ("plan", "batch", "part", "title"):
        if getattr(drop, name) in (None, "") and getattr(bold, name) not in (None, ""):
            setattr(drop, name, getattr(bold, name))
    if "status" not in meta:
        drop.status = bold.status
    return drop


def bold_drop(body: str, path: Path) -> DropRecord:
    """A drop in the older form: ``# KNOWLEDGE DROP: <title>`` and ``**Key**: value`` lines."""
    keys = drop_keys.bold_keys(body)
    title = _first_heading(body) or Path(path).stem
    title = re.sub(r"^KNOWLEDGE DROP\s*:\s*", "", title, flags=re.I)
    part = re.search(r"\d+", keys.get("part", ""))
    status = keys.get("status", "complete").lower()
    return DropRecord(
        plan=keys.get("plan"),
        batch=int(b.group()) if (b := re.search(r"\d+", keys.get("batch", ""))) else None,
        part=int(part.group()) if part else None,
        title=title,
        status="failed" if ("fail" in status or "✗" in status) else ("partial" if "partial" in status else "complete"),
        knowledge_file=drop_keys.target(keys),
        created=drop_keys.created(keys) or drop_keys.created_from_name(Path(path).name) or "",
        path=Path(path),
    )


_FM_CONSOLIDATED = re.compile(r"(?m)^consolidated:[^\n]*$")


@functools.lru_cache(maxsize=8)
def _consolidated_line(when: str) -> str:
    return dump_yaml({"consolidated": when}).strip()


def with_consolidated(text: str, when: str) -> str | None:
    """A kb-written drop's text with its ``consolidated:`` line set to ``when``, every other
    byte kept; None when the drop has no such line (older drops: use set_drop_consolidated)."""
    end = text.find("\n---\n", 3) if text.startswith("---\n") else -1
    if end < 0 or not _FM_CONSOLIDATED.search(text, 4, end + 1):
        return None
    line = _consolidated_line(when)
    head = _FM_CONSOLIDATED.sub(lambda _: line, text[4 : end + 1], count=1)
    return "---\n" + head + text[end + 1 :]


def set_drop_consolidated(path: Path, when: str) -> None:
    """Record in a drop's front matter that the oracle consolidated it (older drops gain front matter)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    stamped = with_consolidated(text, when)
    if stamped is not None:
        atomic_write_text(path, stamped)
        return
    drop = read_drop(path)
    drop.consolidated = when
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    post = frontmatter.loads(text)
    if post.metadata:
        post.metadata["consolidated"] = when
        atomic_write_text(path, render_with_front_matter(dict(post.metadata), post.content))
    else:
        atomic_write_text(path, render_with_front_matter(drop.front_matter(), post.content))
