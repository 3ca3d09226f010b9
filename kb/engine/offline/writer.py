"""The ``offline`` writer: a digest of quoted, cited passages and the plan's own words.

Each planned section gets, from its passages: what to use and when (the docstrings' own
sentences on when and why, each cited; an argument that answers the section first; a deprecated
API only as deprecated, with its replacement), a table of the APIs involved (name, signature, the
sentence that says what it does, cited; once per file), then the one most relevant example, run in kb's sandbox
before the file lands (kb.engine.offline.gate), or, without one, the most relevant excerpt.
A docstring or example another file quotes first (kb.engine.offline.owners) is linked, not
repeated; a section research left empty whose answer another file of the plan quotes (the
researcher's ``linkable`` judges it on topic) says so in one cited line linking to that file's
section. A section without a relevant passage says so. Sources are renumbered 1..m in order
of first citation, so the file lists exactly what it cites. The layout is the jinja2 template
``runners/knowledge-file.md.j2`` (the workspace's, else kb's).
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import jinja2

from kb.corpus.options import SOURCE_SUFFIX
from kb.corpus.tokenize import terms
from kb.engine.check import EMPTY_MARK, curated_note
from kb.engine.offline.digest import (NO_PURPOSE, answered_above, answers, cell, deprecation, excerpt_blocks,
                                      ignored_arguments, joined, keyword_only, parameter_names, purpose, read_excerpt,
                                      sentences, short_signature, statements)
from kb.engine.offline.gate import SnippetGate, Verdict
from kb.engine.offline.owners import Elsewhere, QuotedIn, QuoteOwners
from kb.engine.offline.query import FILLER
from kb.engine.offline.snippets import Snippet, make_snippet, runnable_snippet, strip_directives
from kb.engine.types import FOUND_NOTHING, Draft, Passage, WriteRequest
from kb.errors import ConfigError
from kb.records import SourceRef

TEMPLATE_NAME = "knowledge-file.md.j2"
ENGINE = "offline"


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


def _modules(passage: Passage) -> set[str]:
    """The terms of the modules holding an API (bitsandbytes.optim): a section word only they say is not its subject.
    A word its own name says too is (torch.utils.checkpoint.checkpoint: "checkpoint" is what it is about)."""
    if passage.kind != "doc":
        return set()
    parts = passage.locator.split(".")
    modules = set(terms(" ".join(p for p in parts[:-1] if p[:1].islower())))
    return modules - set(terms(" ".join(p for p in parts[-2:] if p[:1].isupper() or p == parts[-1])))


def _link(target: str | None, locator: str, root: str = "knowledge") -> str:
    """A relative link from the knowledge file to a workspace-relative locator (``root``: the
    layout's knowledge root, "" where it is the workspace; PART targets are relative to it)."""
    path, _, anchor = locator.partition("#")
    here = posixpath.dirname(posixpath.join(root, target or "x.md"))
    rel = posixpath.relpath(path, here)
    return f"{rel}#{anchor}" if anchor else rel


def _first_line(code: str) -> str:
    lines = [ln.strip() for ln in code.splitlines() if ln.strip()]
    return next((ln for ln in lines if not ln.startswith(("#", "import ", "from "))), lines[0] if lines else "")[:60]


@dataclass
class _Cited:
    """Sources in order of first citation, renumbered 1..m."""

    refs: dict[str, SourceRef] = field(default_factory=dict)

    def cite(self, source: SourceRef | None, passage: Passage) -> SourceRef:
        return self.cite_ref(passage.locator, source.title if source else passage.title,
                             source.kind if source else passage.kind, source.accessed if source else None)

    def cite_ref(self, locator: str, title: str, kind: str, accessed: str | None = None) -> SourceRef:
        if locator not in self.refs:
            self.refs[locator] = SourceRef(id=len(self.refs) + 1, title=title, kind=kind, locator=locator, accessed=accessed)
        return self.refs[locator]


@dataclass
class _Example:
    """One documentation example and the snippet the writer would show for it."""

    passage: Passage
    code: str
    snippet: Snippet | None  # the form shown (the docs' own until the sandbox says otherwise); None: left out
    runnable: Snippet | None = None  # the form kb would run, until the sandbox has judged it
    ran: bool = False  # the sandbox ran the snippet shown, to the end
    why_left_out: str | None = None
    deprecated: str | None = None  # the deprecation warning the sandbox's run printed


class ExtractiveWriter:
    """A Writer (kb.engine.types) that quotes and cites, and writes nothing the passages and plan do not say."""

    engine = ENGINE

    def __init__(self, runners_dir: Path | None = None, *, corpus: str | Callable[[], str] | None = None,
                 today: str | None = None, resolve: Callable[[str], bool] | None = None,
                 gate: SnippetGate | None = None, owners: QuoteOwners | None = None, knowledge_root: str = "knowledge",
                 linkable: Callable | None = None):
        self.template, self.template_path = load_template(runners_dir)
        self.root = knowledge_root
        self._corpus = corpus or "the local corpus"
        self.today = today
        self.resolve = resolve  # does the corpus document this dotted API path? (imports for examples)
        self.gate = gate  # runs candidate examples in the sandbox (None: none is run; examples kept as the docs give them)
        self.owners = owners  # which file quotes a passage first (None: this file alone is considered)
        # (part, section number, [(locator, quoting section's title, details)]) -> the locators on topic for it
        self.linkable = linkable

    @property
    def corpus(self) -> str:
        """What the corpus holds, in words (for the overview and the empty-section notes)."""
        return self._corpus() if callable(self._corpus) else self._corpus

    async def write(self, request: WriteRequest) -> Draft:
        if self.gate is None and self.owners is None:
            return self.write_sync(request)
        # The sandbox and a sibling PART's research are seconds of blocking work: off the shared event loop.
        return await asyncio.to_thread(self.write_sync, request)

    def close(self) -> None:
        """Stop the sandbox worker that checks examples, if one runs."""
        if self.gate is not None:
            self.gate.close()

    def _who(self, passage: Passage, source: SourceRef, target: str | None) -> str:
        """Who is quoted: "the docstring of `x` (torch 2.13)", or a link to the file or page."""
        if passage.kind == "doc":
            version = source.title.split(", ", 1)[1].replace(" docstring", "") if ", " in source.title else ""
            what = "docstring"
            if version.endswith(" " + SOURCE_SUFFIX):  # options documented by comments (kb.corpus.options)
                what, version = SOURCE_SUFFIX, version[: -len(SOURCE_SUFFIX) - 1]
            return f"the {what} of `{passage.locator}`" + (f" ({version})" if version else "")
        if passage.kind == "web":
            return f"[{passage.title}]({passage.locator})"
        return f"[{passage.title}]({_link(target, passage.locator, self.root)})"

    # -- examples ---------------------------------------------------------------------------------

    def _examples(self, sections: list[tuple[int, list[Passage], set[str]]], elsewhere: Elsewhere) -> dict[int, list[_Example]]:
        """Every section's candidate examples, in order of relevance, each with both its forms (not run yet).
        ``sections``: (number, passages, the terms of the section's title)."""
        found: dict[int, list[_Example]] = {}
        for number, passages, wanted in sections:
            for passage in passages:
                excerpt = read_excerpt(passage.text)
                if deprecation(excerpt):
                    continue  # an example of a deprecated API teaches what not to use
                # The title names one of its keyword-only arguments (`fused` under "Fused optimizers"): an example that
                # does not pass it shows something else.
                answering = [a for a in keyword_only(excerpt.signature) if answers(a, wanted)]
                for code in passage.examples:
                    if "```" in code or "~~~" in code or elsewhere.quoting(strip_directives(code)):
                        continue  # it would close its fence; or another file shows it already
                    if answering and not any(re.search(rf"\b{re.escape(a)}\s*=", code) for a in answering):
                        continue
                    conservative = make_snippet(code, passage.locator, self.resolve)
                    if conservative is None:
                        continue
                    runnable = runnable_snippet(code, passage.locator, self.resolve) if self.gate else None
                    found.setdefault(number, []).append(_Example(passage, code, conservative, runnable=runnable))
        return found

    def _decide(self, example: _Example, verdict: Verdict) -> None:
        """Which form to show, from what the sandbox did with the runnable one."""
        runnable, example.runnable = example.runnable, None  # decided: ``snippet`` keeps the docs' form unless below
        if verdict.ran:
            example.snippet, example.ran = runnable, True
            example.deprecated = verdict.deprecated
        elif verdict.ran_without_cuda:
            # It ran to the end here, setup included, with torch's CUDA feature off: its real need is a GPU, not
            # names defined elsewhere. Marked so that validation skips it on a CPU, as the sandbox did; kb's
            # stand-ins are then made on the GPU, or a GPU run would exercise the feature on CPU tensors only
            # (GradScaler scaling a CPU loss). That form runs under `kb validate-snippets --gpu`.
            if runnable.setup:
                runnable = runnable_snippet(example.code, example.passage.locator, self.resolve, device="cuda") or runnable
            if "kb:requires=cuda" not in runnable.info:
                runnable.info += " kb:requires=cuda"
            example.snippet = runnable
        elif verdict.failing:
            if not runnable.setup:
                example.snippet = None  # the docs' own code fails here: left out
                example.why_left_out = (verdict.reason or verdict.status).splitlines()[0][:160]
            # else our stand-in may not be what it expects: the docs' form, not run
        elif not (runnable.setup or runnable.doc_skip):
            example.snippet = runnable  # skipped here for what it needs (CUDA, a module): say so, as validation will
        # otherwise the docs' form (marked skip), never shown with a setup the sandbox could not check

    def _choose(self, examples: list[_Example], shown: set[str]) -> _Example | None:
        """The section's one example: the first that runs here (tried in order, so the sandbox runs only what
        the choice needs), else the first that can be shown."""
        for example in examples:
            if example.code in shown:
                continue
            if example.runnable is not None:
                self._decide(example, self.gate.verdicts([(example.runnable.info, example.runnable.code)])[0])
            if example.ran:
                return example
        return next((e for e in examples if e.snippet is not None and e.code not in shown), None)

    @staticmethod
    def _example_lead(example: _Example) -> str:
        snippet = example.snippet
        notes = []
        if snippet.setup:
            notes.append("kb added the setup at its top, marked in the code, so that it runs")
        skip = re.search(r'kb:skip="([^"]*)"', snippet.info)
        if skip:
            notes.append(f"not run by kb: {skip.group(1)}")
        elif "kb:requires=cuda" in snippet.info:
            notes.append("it needs a CUDA device")
        if example.deprecated:  # what the library printed when kb ran it: a reader copying the example must know
            notes.append(f"when kb ran it, it warned: \"{example.deprecated}\"")
        return "; ".join(notes)

    # -- the draft ----------------------------------------------------------------------------------

    def write_sync(self, request: WriteRequest) -> Draft:
        part, research = request.part, request.research
        elsewhere = self.owners.elsewhere(request.plan_path, part) if self.owners is not None else Elsewhere()
        cited = _Cited()
        by_locator = {s.locator: s for s in research.sources}
        reasons = {int(m.group(1)): m.group(2) for w in research.warnings
                   if (m := FOUND_NOTHING.match(w)) and m.group(2)}
        warnings: list[str] = []
        planned = [(s.number, s.title, s.details) for s in part.sections] or [(0, part.title, "")]

        # Which passages this file quotes, and which it points to in the file that quotes them first.
        split: list[tuple[int, list[Passage], list[tuple[Passage, QuotedIn]]]] = []
        for number, _title, _details in planned:
            here, there = [], []
            for passage in research.by_section.get(number, []):
                owner = elsewhere.quoted_in(passage.locator) if elsewhere.owner(passage.locator) else None
                if owner is None and passage.kind == "doc":
                    text_owner = elsewhere.quoting(purpose(read_excerpt(passage.text).summary) or "")
                    owner = QuotedIn(text_owner[0], text_owner[1], 0) if text_owner else None
                (there.append((passage, owner)) if owner else here.append(passage))
            if not here and not there and number:
                there = self._linked(part, number, elsewhere)
            split.append((number, here, there))
        examples = self._examples([(n, here, set(terms(title)))
                                   for (n, here, _there), (_n, title, _details) in zip(split, planned)], elsewhere)
        shown_code: set[str] = set()
        featured: dict[int, _Example | None] = {}  # each section's one example, chosen (and run) before any is written
        for number, _title, _details in planned:
            featured[number] = self._choose(examples.get(number, []), shown_code)
            if featured[number] is not None:
                shown_code.add(featured[number].code)
        # What the library printed when kb ran the file's examples: torch.jit.save's example warns that
        # torch.jit.script is deprecated, and another section's table row of torch.jit.script says so too.
        warned = " ".join(dict.fromkeys(e.deprecated for e in featured.values() if e is not None and e.deprecated))

        said: set[str] = set()  # blocks and sentences this file quotes already (two docstrings may share words)
        first_section: dict[str, int] = {}  # locator -> the section that first quoted it
        sections = []
        # What every section of the file is about (the PART's title), and plan words that say how, not what: a
        # sentence saying only these is no section's in particular.
        topic = set(terms(part.title)) | FILLER
        for (number, title, details), (_n, here, there) in zip(planned, split):
            # ... where the title says a subject of its own ("Optimizer CPU overhead"), not the PART's ("CUDA stream
            # fundamentals" in a PART on CUDA streams)
            own_subject = topic if set(terms(title)) - topic else frozenset()
            section = self._section(part.target, number, set(terms(f"{title} {details or ''}")), here, there,
                                    featured[number], cited, by_locator, said, first_section, elsewhere, warned,
                                    own_subject)
            filled = bool(here or there)
            sections.append({"number": number, "title": title, "heading": f"Section {number}: {title}" if number else "Key Passages",
                             "details": details, **section, "empty": "" if filled else self._empty_note(number, reasons),
                             "curated": curated_note(here + [p for p, _owner in there])})
        for number, found in examples.items():
            for example in found:
                if example.snippet is None:
                    warnings.append(f"section {number}: an example from {example.passage.locator} "
                                    f"({_first_line(example.code)!r}) was left out: it failed in kb's sandbox: "
                                    f"{example.why_left_out}")
        sources = list(cited.refs.values())
        body = self.template.render(
            title=part.title, tagline=self._tagline(request, sections, sources), overview=self._overview(request),
            sections=sections, documents=[self._doc_source(s, part.target) for s in sources if s.kind != "web"],
            web=[s for s in sources if s.kind == "web"],
            no_web="the offline engine reads only the local corpus; it makes no network requests.",
            engine_line=(f"Written by kb's offline engine (extractive: no language model) on {self.today or date.today().isoformat()}, "
                         f"from {self.corpus}. Every statement in a section is its cited source's own words: what to use "
                         "and when, a table of the APIs (signature, the sentence saying what each does), and an example "
                         "or excerpt where its sources have one; headings, table layout and the lines that lead a quote are "
                         "kb's, and other text comes from the plan. An example shown as run ran in kb's sandbox (imports and "
                         "a setup kb added say so in the code); a passage another file quotes first is linked, not repeated."),
        )
        body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
        # Research's own warnings reach the drop from the run's state (kb.runner.nodes), which withdraws "nothing in
        # the local corpus" for a section filled by a link: the draft carries only the writer's.
        return Draft(title=part.title, body=body, sources=sources, engine=ENGINE, model=None, warnings=warnings)

    def _linked(self, part, number: int, elsewhere: Elsewhere) -> list[tuple[Passage, QuotedIn]]:
        """For a section research left empty: the passages another file quotes that answer it, all from the one
        section that quotes the best of them (one line, one link), or none."""
        # Docstrings only (a path is a knowledge or folder passage, which the quoting file links to itself).
        quoted = [(loc, q) for loc, q in elsewhere.quoted() if q is not None and q.number and "/" not in loc]
        if self.linkable is None or not quoted:
            return []
        found = self.linkable(part, number, [(loc, q.title, q.details) for loc, q in quoted])
        if not found:
            return []
        where = dict(quoted)
        best = where[found[0]]
        return [(Passage(kind="doc", locator=loc, title=loc, text=""), where[loc]) for loc in found if where[loc] == best]

    def _section(self, target: str | None, number: int, wanted: set[str], here: list[Passage],
                 there: list[tuple[Passage, QuotedIn]], example: _Example | None, cited: _Cited,
                 by_locator: dict[str, SourceRef], said: set[str], first_section: dict[str, int],
                 elsewhere: Elsewhere, warned: str = "", topic: set[str] = frozenset()) -> dict:
        """One section's digest: uses (what to use and when), table, featured example or excerpt, see_above."""
        rows, uses, above = [], [], []
        quoted: dict[str, list[str]] = {}
        sources = {}
        for passage in here:
            source = sources[passage.locator] = cited.cite(by_locator.get(passage.locator), passage)
            excerpt = read_excerpt(passage.text)
            notice = deprecation(excerpt)
            # A deprecated API is never the recommendation: its one line says so and names what replaces it.
            chosen = [] if notice else [x for x in statements(excerpt, wanted, said, own=_modules(passage), topic=topic)
                                        if not elsewhere.quoting(x.text)]
            if passage.kind == "doc" and passage.locator not in first_section:  # a row is not repeated in a file
                keep = ({x.argument for x in chosen if x.argument} | {
                    a for a in parameter_names(excerpt.signature).values() if answers(a, wanted)}
                    ) - ignored_arguments(excerpt)  # `optim_bits=32` beside "8-bit optimizers", where it is not used
                what = purpose(excerpt.summary)
                # Its docstring says nothing, but running its example printed that it is deprecated (torch.jit.trace).
                warns = not notice and bool(warned) and f"`{passage.locator}`" in warned
                rows.append({"name": f"`{passage.locator}`",
                             "signature": f"`{cell(short_signature(excerpt.signature, keep))}`" if excerpt.signature else "",
                             "purpose": ("**Deprecated.** " if notice else "**Deprecated** (it warns when run). " if warns
                                         else "") + (cell(_neutralize(what)) if what else NO_PURPOSE),
                             "id": source.id})
            if notice:
                name = f"`{passage.locator}`" if passage.kind == "doc" else f"[{passage.title}]"
                uses.append(f"{name} [{source.id}] is deprecated: {_neutralize(notice)}")
                chosen = []
                said.add(notice)
            uses += self._uses(passage, source, chosen, target)
            quoted[passage.locator] = [x.text for x in chosen]
            said.update(quoted[passage.locator])
            said.update(y for x in chosen for y in sentences(x.text))  # a statement may be two sentences said as one
        featured = None
        if example is not None:
            source = sources[example.passage.locator]
            featured = {"lead": f"Example from {self._who(example.passage, source, target)}", "id": source.id,
                        "quote": "", "snippet": example.snippet, "note": self._example_lead(example)}
        else:  # the most relevant excerpt: the first passage with words this file has not quoted yet
            for passage in here:
                if deprecation(read_excerpt(passage.text)):
                    continue  # how to use what is deprecated is no lesson
                blocks = self._fresh_blocks(passage, said, elsewhere, wanted)
                if blocks:
                    source = sources[passage.locator]
                    featured = {"lead": f"From {self._who(passage, source, target)}", "id": source.id,
                                "quote": blockquote(blocks), "snippet": None, "note": ""}
                    quoted[passage.locator] += blocks
                    said.update(blocks)
                    said.update(x for b in blocks for x in sentences(b))
                    break
        items = []
        for passage in here:
            source = sources[passage.locator]
            mine = featured is not None and featured["id"] == source.id
            if not quoted[passage.locator] and not mine and passage.locator in first_section:
                # The argument that answers this section, where an earlier one quoted it ("Backend selection": `backend`).
                args = [f", argument `{a}`" for a in answered_above(read_excerpt(passage.text), wanted, said)]
                above.append(f"`{passage.locator}` [{source.id}]{''.join(args[:2])} (Section {first_section[passage.locator]})")
            first_section.setdefault(passage.locator, number)
            items.append({"lead": f"From {self._who(passage, source, target)}", "id": source.id,
                          "quote": blockquote(quoted[passage.locator]) if quoted[passage.locator] else "",
                          "snippets": [featured["snippet"]] if mine and featured["snippet"] is not None else []})
        # A passage an earlier file quotes first is linked; the arguments this section names (FSDP's
        # sharding_strategy under "FSDP optimization (sharding_strategy, ...)") are this section's own words, said
        # here unless that file said them already.
        for passage, _owner in there:
            if passage.kind != "doc" or not passage.text or deprecation(read_excerpt(passage.text)):
                continue  # the link route's passages (no text): another section's answer, pointed to as a whole
            chosen = [x for x in statements(read_excerpt(passage.text), wanted, said)
                      if x.argument is not None and answers(x.argument, wanted) and not elsewhere.quoting(x.text)]
            if chosen:
                uses += self._uses(passage, cited.cite(by_locator.get(passage.locator), passage), chosen, target)
                said.update(x.text for x in chosen)
                quoted[passage.locator] = [x.text for x in chosen]  # its own words here: the section quotes, not only points
                first_section.setdefault(passage.locator, number)
            elif passage.locator in first_section:
                # ... or an earlier section of this file said them ("Prefetching strategies": `prefetch_factor`, said
                # under "DataLoader optimization"): pointed to there, beside the link to the file that quotes the rest.
                args = [f", argument `{a}`" for a in answered_above(read_excerpt(passage.text), wanted, said)]
                if args:
                    source = cited.cite(by_locator.get(passage.locator), passage)
                    above.append(f"`{passage.locator}` [{source.id}]{''.join(args[:2])} (Section {first_section[passage.locator]})")
        # One line per file section that quotes them: "`a` and `b` are quoted in [file, Section N: ...](link#anchor) [n]."
        grouped: dict[QuotedIn, list[Passage]] = {}
        for passage, owner in there:
            grouped.setdefault(owner, []).append(passage)
        for owner, passages in grouped.items():
            ref = cited.cite_ref(owner.locator, owner.label, "knowledge")
            names = [f"`{p.locator}`" if p.kind == "doc" else f"[{p.title}]" for p in passages]
            what = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
            verb = "is" if len(names) == 1 else "are"
            if all(quoted.get(p.locator) for p in passages):
                what, verb = f"More of {what}", "is"  # its arguments are quoted here, the rest there
            link = f"[{owner.label}]({_link(target, owner.locator, self.root)})"
            uses.append(f"{what} {verb} quoted in {link} [{ref.id}].")
            items.append({"lead": f"{what} {verb} quoted in {link}", "id": ref.id, "quote": "", "snippets": []})
        # Does the section quote its own passage, or only point to the section (here or in another file) that does?
        own = bool(rows or featured or any(quoted.values()))
        return {"uses": uses, "table": rows, "featured": featured, "passages": items, "own": own,
                "see_above": f"Also relevant, and quoted above: {', '.join(above)}." if above else ""}

    @staticmethod
    def _fresh_blocks(passage: Passage, said: set[str], elsewhere: Elsewhere, wanted: set[str] = frozenset()) -> list[str]:
        """The passage's blocks worth quoting as its excerpt: not its signature or the summary's first
        sentence (the table says those), not quoted before in this file, not said in an earlier file."""
        blocks = excerpt_blocks(read_excerpt(passage.text), said, passage.kind != "doc", wanted, _modules(passage))
        return [b for b in blocks if not elsewhere.quoting(b)]

    def _uses(self, passage: Passage, source: SourceRef, said: list, target: str | None) -> list[str]:
        """Bullets of "what to use and when": the passage's own sentences, one bullet per API or argument."""
        if not said:
            return []
        name = f"`{passage.locator}`" if passage.kind == "doc" else f"[{passage.title}]({_link(target, passage.locator, self.root)})"
        out = []
        plain = [s for s in said if s.argument is None]
        if plain:
            out.append(f"{name} [{source.id}]: {_neutralize(joined(plain))}")
        spelled = parameter_names(read_excerpt(passage.text).signature) if passage.kind == "doc" else {}
        for argument in dict.fromkeys(s.argument for s in said if s.argument is not None):
            text = joined([s for s in said if s.argument == argument])
            # kb's label names the parameter as the signature spells it (StreamContext's docs call `stream` "Stream").
            label = argument if argument in spelled.values() else spelled.get(argument.lower(), argument)
            out.append(f"{name}, argument `{label}` [{source.id}]: {_neutralize(text)}")
        return out

    def _empty_note(self, number: int, reasons: dict[int, str]) -> str:
        reason = reasons.get(number)
        why = f" ({reason})" if reason else ""
        # One line, recorded as empty in the drop, INDEX.md and kb report (kb.engine.check.EMPTY_MARK).
        return f"{EMPTY_MARK} on this section in {self.corpus}{why}."

    @staticmethod
    def _tagline(request: WriteRequest, sections: list[dict], sources: list[SourceRef]) -> str:
        quoted = sum(1 for s in sections if not s["empty"] and s["own"])
        pointing = sum(1 for s in sections if not s["empty"] and not s["own"])
        topic = request.topic or request.plan_title or "the knowledge base"
        documents = sum(1 for s in sources if s.kind != "knowledge")
        if not quoted and not pointing:
            return (f"{topic}, PART {request.part.number}: research found nothing in the local corpus for its "
                    f"{len(sections)} planned section{'s' if len(sections) != 1 else ''}.")
        line = (f"{topic}, PART {request.part.number}: {quoted} of {len(sections)} planned sections quoted and cited "
                f"from {documents} local source{'s' if documents != 1 else ''}")
        if pointing:  # a section holding only a link is not documented here: say so, not "documented"
            line += f"; {pointing} point{'s' if pointing == 1 else ''} to the section that quotes {'its' if pointing == 1 else 'their'} answer"
        return line + "."

    def _overview(self, request: WriteRequest) -> list[str]:
        part = request.part
        # The plan is named, not linked: consolidate moves it to plans/completed/, and a link would break
        # (the front matter's ``plan:`` says which file it is).
        titles = "; ".join(f"{s.title} ({s.details})" if s.details else s.title for s in part.sections) or part.title
        paragraphs = [
            f"This file collects what the local corpus says about {part.title.lower() if part.title.isupper() else part.title}, "
            f"as planned in PART {part.number} of the plan \"{request.plan_title or request.plan_path}\" "
            f"(`{request.plan_path}`): {titles}.",
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
