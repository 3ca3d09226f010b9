"""The ``offline`` writer: a knowledge file made only of quoted, cited passages and the plan's own words.

Each planned section gets its passages as blockquotes, each led by who says it and
its source number ``[n]``; documentation examples become fenced Python snippets.
A section without a relevant passage says so. Sources are renumbered 1..m in
order of first citation, so the file lists exactly what it cites. The layout is
the jinja2 template ``runners/knowledge-file.md.j2`` (the workspace's, else kb's).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import jinja2

from kb.corpus.options import SOURCE_SUFFIX
from kb.engine.check import EMPTY_MARK
from kb.engine.offline.excerpts import GAP
from kb.engine.offline.research import REFERENCE
from kb.engine.offline.snippets import make_snippet
from kb.engine.types import Draft, Passage, WriteRequest
from kb.errors import ConfigError
from kb.records import SourceRef

TEMPLATE_NAME = "knowledge-file.md.j2"
ENGINE = "offline"
MAX_SNIPPETS_PER_SECTION = 2
_SECTION_WARNING = re.compile(r"^section (\d+) \(.*?\): nothing in the local corpus \((.*)\)$")


def load_template(runners_dir: Path | None) -> tuple[jinja2.Template, str]:
    """The workspace's ``runners/knowledge-file.md.j2``, or kb's built-in one; ConfigError if it does not compile."""
    path = Path(runners_dir) / TEMPLATE_NAME if runners_dir is not None else None
    if path is not None and path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        text = (resources.files("kb") / "templates" / "workspace" / "runners" / TEMPLATE_NAME).read_text(encoding="utf-8")
        where = f"kb's built-in runners/{TEMPLATE_NAME}"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    try:
        return env.from_string(text), where
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{where}: line {exc.lineno}: jinja2 syntax error: {exc.message}") from None


def _neutralize(text: str) -> str:
    """Bracketed numbers in quoted text ("see [1]") would read as our citations: escape them."""
    pieces = re.split(r"(`[^`]*`)", text)
    return "".join(p if k % 2 else re.sub(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]", r"\\[\1\\]", p)
                   for k, p in enumerate(pieces))


def blockquote(blocks: list[str]) -> str:
    out: list[str] = []
    for block in blocks:
        if out:
            out.append(">")
        out += [f"> {line}".rstrip() for line in _neutralize(block).splitlines()]
    return "\n".join(out)


def _link(target: str | None, locator: str, root: str = "knowledge") -> str:
    """A relative link from the knowledge file to a workspace-relative locator (``root``: the
    layout's knowledge root, "" where it is the workspace; PART targets are relative to it)."""
    path, _, anchor = locator.partition("#")
    here = posixpath.dirname(posixpath.join(root, target or "x.md"))
    rel = posixpath.relpath(path, here)
    return f"{rel}#{anchor}" if anchor else rel


@dataclass
class _Cited:
    """Sources in order of first citation, renumbered 1..m."""

    refs: dict[str, SourceRef] = field(default_factory=dict)

    def cite(self, source: SourceRef | None, passage: Passage) -> SourceRef:
        key = passage.locator
        if key not in self.refs:
            self.refs[key] = SourceRef(id=len(self.refs) + 1, title=source.title if source else passage.title,
                                       kind=source.kind if source else passage.kind, locator=passage.locator,
                                       accessed=source.accessed if source else None)
        return self.refs[key]


class ExtractiveWriter:
    """A Writer (kb.engine.types) that quotes and cites, and writes nothing the passages and plan do not say."""

    engine = ENGINE

    def __init__(self, runners_dir: Path | None = None, *, corpus: str | Callable[[], str] | None = None,
                 today: str | None = None, resolve: Callable[[str], bool] | None = None, knowledge_root: str = "knowledge"):
        self.template, self.template_path = load_template(runners_dir)
        self.root = knowledge_root
        self._corpus = corpus or "the local corpus"
        self.today = today
        self.resolve = resolve  # does the corpus document this dotted API path? (imports for examples)

    @property
    def corpus(self) -> str:
        """What the corpus holds, in words (for the overview and the empty-section notes)."""
        return self._corpus() if callable(self._corpus) else self._corpus

    async def write(self, request: WriteRequest) -> Draft:
        return self.write_sync(request)

    def _lead(self, passage: Passage, source: SourceRef, target: str | None, again: bool) -> str:
        more = "More from" if again else "From"
        if passage.kind == "doc":
            version = source.title.split(", ", 1)[1].replace(" docstring", "") if ", " in source.title else ""
            what = "docstring"
            if version.endswith(" " + SOURCE_SUFFIX):  # options documented by comments (kb.corpus.options)
                what, version = SOURCE_SUFFIX, version[: -len(SOURCE_SUFFIX) - 1]
            return f"{more} the {what} of `{passage.locator}`" + (f" ({version})" if version else "")
        if passage.kind == "web":
            return f"{more} [{passage.title}]({passage.locator})"
        return f"{more} [{passage.title}]({_link(target, passage.locator, self.root)})"

    def write_sync(self, request: WriteRequest) -> Draft:
        part, research = request.part, request.research
        cited = _Cited()
        by_locator = {s.locator: s for s in research.sources}
        quoted: dict[str, set[str]] = {}  # locator -> blocks already quoted
        shown_code: set[str] = set()
        reasons = {int(m.group(1)): m.group(2) for w in research.warnings if (m := _SECTION_WARNING.match(w))}
        warnings: list[str] = []
        planned = [(s.number, s.title, s.details) for s in part.sections] or [(0, part.title, "")]
        sections = []
        for number, title, details in planned:
            items, earlier = [], []
            snippets_left = MAX_SNIPPETS_PER_SECTION
            for passage in research.by_section.get(number, []):
                if passage.kind == REFERENCE:  # quoted in an earlier file: a pointer, not a second copy
                    source = cited.cite(by_locator.get(passage.locator), passage)
                    items.append({"lead": f"`{passage.text}` is quoted in [{passage.title}]({_link(part.target, passage.locator, self.root)})",
                                  "id": source.id, "quote": "", "snippets": []})
                    continue
                blocks = [b for b in passage.text.split("\n\n") if b.strip()]
                seen = quoted.setdefault(passage.locator, set())
                again = bool(seen)
                fresh = [b for b in blocks if b not in seen]
                while fresh and fresh[0] == GAP:
                    fresh.pop(0)
                while fresh and fresh[-1] == GAP:
                    fresh.pop()
                if not [b for b in fresh if b != GAP]:
                    earlier.append(passage)
                    continue
                source = cited.cite(by_locator.get(passage.locator), passage)
                seen.update(fresh)
                snippets = []
                for code in passage.examples:
                    if snippets_left <= 0 or code in shown_code:
                        continue
                    snippet = make_snippet(code, passage.locator, self.resolve)
                    if snippet is None:
                        warnings.append(f"section {number}: an example from {passage.locator} is not valid Python; left out")
                        continue
                    shown_code.add(code)
                    snippets.append(snippet)
                    snippets_left -= 1
                items.append({"lead": self._lead(passage, source, part.target, again), "id": source.id,
                              "quote": blockquote(fresh), "snippets": snippets})
            empty = self._empty_note(number, earlier, cited, reasons)
            see_above = ""
            if items and earlier:
                refs = ", ".join(f"`{p.locator}` [{cited.refs[p.locator].id}]" for p in earlier if p.locator in cited.refs)
                see_above = f"Also relevant, and quoted above: {refs}." if refs else ""
            heading = f"Section {number}: {title}" if number else "Key Passages"
            sections.append({"number": number, "title": title, "heading": heading, "details": details,
                             "passages": items, "empty": empty, "see_above": see_above})
        sources = list(cited.refs.values())
        body = self.template.render(
            title=part.title, tagline=self._tagline(request, sections, sources), overview=self._overview(request),
            sections=sections, documents=[self._doc_source(s, part.target) for s in sources if s.kind != "web"],
            web=[s for s in sources if s.kind == "web"],
            no_web="the offline engine reads only the local corpus; it makes no network requests.",
            engine_line=(f"Written by kb's offline engine (extractive: no language model) on {self.today or date.today().isoformat()}, "
                         f"from {self.corpus}. Every quoted passage is attributed; text outside quotes comes from the plan."),
        )
        body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
        return Draft(title=part.title, body=body, sources=sources, engine=ENGINE, model=None,
                     warnings=[*research.warnings, *warnings])

    def _empty_note(self, number: int, earlier: list[Passage], cited: _Cited, reasons: dict[int, str]) -> str:
        if earlier:
            refs = ", ".join(f"`{p.locator}` [{cited.refs[p.locator].id}]" for p in earlier if p.locator in cited.refs)
            if refs:
                return f"The passages the local corpus has on this topic are already quoted above: {refs}."
        reason = reasons.get(number)
        why = f" ({reason})" if reason else ""
        # One line, recorded as empty in the drop, INDEX.md and kb report (kb.engine.check.EMPTY_MARK).
        return f"{EMPTY_MARK} on this section in {self.corpus}{why}."

    @staticmethod
    def _tagline(request: WriteRequest, sections: list[dict], sources: list[SourceRef]) -> str:
        covered = sum(1 for s in sections if s["passages"])
        topic = request.topic or request.plan_title or "the knowledge base"
        return (f"{topic}, PART {request.part.number}: {covered} of {len(sections)} planned sections "
                f"documented from {len(sources)} local source{'s' if len(sources) != 1 else ''}, quoted and cited.")

    def _overview(self, request: WriteRequest) -> list[str]:
        part = request.part
        # The plan is named, not linked: consolidate moves it to plans/completed/, and a link would break
        # (the front matter's ``plan:`` says which file it is).
        titles = "; ".join(f"{s.title} ({s.details})" if s.details else s.title for s in part.sections) or part.title
        paragraphs = [
            f"This file collects what the local corpus says about {part.title.lower() if part.title.isupper() else part.title}, "
            f"as planned in PART {part.number} of the plan \"{request.plan_title or request.plan_path}\" "
            f"(`{request.plan_path}`): {titles}.",
            "It was compiled by kb's offline engine, which adds no claims of its own: each passage below is a quotation "
            "from the numbered source it cites, code examples come from those sources' documentation, and a section "
            "the corpus does not cover says so.",
        ]
        reads = []
        for doc in request.context:
            note = f": {doc.note}" if doc.note else ""
            if doc.text is not None:
                reads.append(f"[{doc.path}]({_link(part.target, posixpath.join(self.root, doc.path), self.root)}){note}")
            else:  # a link to a file that does not exist is a broken link: name it as text
                reads.append(f"`{doc.path}`{note} (not in the knowledge tree yet)")
        if reads:
            paragraphs.append("Existing knowledge this PART builds on: " + "; ".join(reads) + ".")
        if part.influenced_by:
            paragraphs.append(f"Influenced by (from the plan): {part.influenced_by}.")
        return paragraphs

    def _doc_source(self, source: SourceRef, target: str | None) -> dict:
        if source.kind == "doc":
            label = f"`{source.locator}`: {source.title.split(', ', 1)[1] if ', ' in source.title else 'docstring'}"
        else:
            label = f"[{source.title}]({_link(target, source.locator, self.root)}) (`{source.locator}`)"
        return {"id": source.id, "label": label, "title": source.title, "locator": source.locator, "kind": source.kind}
