"""The pages of the site: one ``Site`` answers a URL path with a page, read fresh from disk.

The live server and ``kb serve --build`` both ask it for pages, so what is served
and what is published are the same HTML. Every request re-reads the files it shows;
only file titles and the search index are cached, keyed by the files' mtimes and sizes.

A page carries no copy of the knowledge tree: every page loads one navigation script
(``_static/nav-data.js``, the tree with its titles) that draws the sidebar, so a page's size
does not grow with the tree and a new file rewrites one script, not every page. Each code
block's validation result is shown under it, in its file's page.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import frontmatter
import jinja2

from kb.fsutil import sha256_text
from kb.records import KnowledgeDoc, read_drop, read_knowledge
from kb.serve import urls
from kb.serve.markdown import Fence, make_markdown, parse_file, pygments_css, render_file
from kb.serve.layout import SiteLayout
from kb.serve.plans import load_drops, load_plans
from kb.serve.results import RESULTS_REL, Results, read_results
from kb.corpus.tokenize import STOPWORDS
from kb.serve.search import Section, SectionIndex
from kb.serve.urls import Route, href, page_for_source, root_prefix, safe_file

HTML = "text/html; charset=utf-8"
# Pages need nothing from the network; scripts only from the site itself (the static search).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Files served as they are; an asset is a file of the tree, which may be anything: never run it.
ASSET_HEADERS = {"Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"}
STATIC_FILES = {
    "kb.css": "text/css; charset=utf-8",
    "kb.js": "text/javascript; charset=utf-8",
    "search.js": "text/javascript; charset=utf-8",
}
JS = "text/javascript; charset=utf-8"
NAV_PREFIX = b"window.KB_NAV = "  # how _static/nav-data.js begins (a build knows its own sites by it)
# The placeholder name `kb init` gives SKILL.md; the folder's name says more.
DEFAULT_SKILL_NAME = "knowledge-base"


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class TreeFile:
    rel: str
    page: str
    title: str
    current: bool = False


@dataclass
class PageDeps:
    """What a page's HTML depends on besides its own file: the workspace paths its links were
    checked against (a link resolves or not as they appear or vanish) and the files it publishes."""

    paths: set[str] = field(default_factory=set)
    assets: set[str] = field(default_factory=set)
    # The knowledge file's text and headings as rendered, so a build splits it for search unparsed,
    # and its title and planned sections as read for the page, so a build reads them once.
    sections: list[Section] | None = None
    info: tuple[str, list[str]] | None = None


# The collector of the page being rendered (the static build asks; the live server does not).
_DEPS: ContextVar[PageDeps | None] = ContextVar("kb_serve_deps", default=None)


@dataclass
class TreeTopic:
    name: str
    folder: str  # workspace-relative, e.g. knowledge/performance
    files: list[TreeFile] = field(default_factory=list)
    open: bool = False

    @property
    def page(self) -> str:
        return urls.topic_page(self.folder)


class _StatCache:
    """Values computed from a file, recomputed when its mtime or size changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, Path], tuple[tuple[int, int], Any]] = {}

    def get(self, kind: str, path: Path, compute) -> Any:
        """``compute(path)``, or the value it gave for the file as it is now; ``kind`` names what it computes."""
        st = path.stat()
        sig = (st.st_mtime_ns, st.st_size)
        key = (kind, path)
        with self._lock:
            hit = self._data.get(key)
        if hit is not None and hit[0] == sig:
            return hit[1]
        value = compute(path)
        with self._lock:
            self._data[key] = (sig, value)
        return value


class Site:
    """Pages of one workspace, rendered on demand from what is on disk now."""

    def __init__(self, root: Path, name: str | None = None, layout: SiteLayout | None = None):
        self.root = Path(root).resolve()
        # Where knowledge/..., drops/... and plans/... lie in this workspace (kb.toml [layout]).
        self.layout = layout or SiteLayout()
        self.md = make_markdown()
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("kb.serve", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,  # the package's own templates: a build keys its pages by them already
        )
        self.templates.filters["when"] = _when
        self.templates.filters["url"] = urls.url_path
        # Titles, fences, SKILL.md's name and parsed results.json, by what and from which file.
        self._by_file = _StatCache()
        self._fixed_name = name
        # (rel, page, title, sections) of every knowledge file, when a build knows them already.
        self._known: list[tuple[str, str, str, list[str]]] | None = None
        self._known_folders: set[str] = set()
        self._known_rels: set[str] = set()
        self._known_results: Results | None = None  # results.json as the build read it, while it builds
        self._known_under: dict[str, list[tuple[str, str, str, list[str]]]] = {}
        self._search_lock = threading.Lock()
        self._search_key: tuple | None = None
        self._search_index: SectionIndex | None = None

    # ----- entry point -------------------------------------------------------------------

    def get(self, raw_path: str, static: bool = False) -> Response:
        """The response for a request path (with its query string); 404 for anything not a page."""
        path = urls.clean_path(raw_path)
        found = urls.route(path) if path is not None else None
        if found is None:
            return self.not_found(path or "")
        query = parse_qs(urlsplit(raw_path).query).get("q", [""])[0][:500]
        page = path if path else urls.HOME
        try:
            response = self._dispatch(found, page, query, static)
        except (OSError, UnicodeError):
            response = None  # vanished or unreadable between the check and the read
        return response if response is not None else self.not_found(page)

    def page_with_deps(self, page: str) -> tuple[Response, PageDeps]:
        """The page at URL path ``page`` (as the static site has it) and what its HTML depends on."""
        deps = PageDeps()
        token = _DEPS.set(deps)
        try:
            return self.get("/" + urls.url_path(page), static=True), deps
        finally:
            _DEPS.reset(token)

    def _dispatch(self, found: Route, page: str, query: str, static: bool) -> Response | None:
        kind, rel = found.kind, found.rel
        if kind == "home":
            return self.home_page()
        if kind == "knowledge" and posixpath.basename(page) == "index.html":
            if self.layout.file(self.root, rel or "", "knowledge") is None:
                return self.topic_page(page)
        if kind in ("doc", "knowledge"):
            return self.markdown_page(page, rel or "", "knowledge" if kind == "knowledge" else "")
        if kind == "drop":
            return self.drop_page(page, rel or "")
        if kind == "plans":
            return self.plans_page()
        if kind == "search":
            return self.search_page(query, static)
        if kind == "static":
            return self.static_file(rel or "")
        if kind == "bare":
            if safe_file(self.root, rel or "", "knowledge") is not None:
                return self.asset(rel or "")
            kind, rel = "redirect", f"{rel}/index.html"
        if kind == "asset":
            return self.asset(rel or "")
        if kind == "redirect":
            source = posixpath.splitext(rel or "")[0] + ".md"
            if self.layout.file(self.root, source, "knowledge") is None and self._topic_folder(rel or "") is None:
                return None
            return Response(302, HTML, b"", {"Location": "/" + urls.url_path(rel or "")})
        return None

    # ----- shared pieces -----------------------------------------------------------------

    def name(self) -> str:
        """The site's title: the skill name SKILL.md gives the knowledge base, else the folder's name."""
        if self._fixed_name:
            return self._fixed_name
        path = safe_file(self.root, "SKILL.md")

        def compute(p: Path) -> str:
            try:
                value = frontmatter.loads(p.read_text(encoding="utf-8", errors="replace")).metadata.get("name")
            except Exception:
                return ""
            return str(value) if value and value != DEFAULT_SKILL_NAME else ""

        named = self._by_file.get("skill-name", path, compute) if path is not None else ""
        return named or self.root.name

    def results(self) -> Results:
        """snippets/results.json as it is now (parsed again only when it changed)."""
        if self._known_results is not None:
            return self._known_results
        path = safe_file(self.root, RESULTS_REL, "snippets")
        if path is None:
            return Results()
        try:
            return self._by_file.get("results", path, lambda p: read_results(p, None if self.layout.default else self.layout.source))
        except OSError:
            return Results()

    def knowledge_files(self) -> list[str]:
        """Workspace-relative paths of the knowledge files (symlinks out of knowledge/ left out)."""
        if self._known is not None:
            return [rel for rel, _, _, _ in self._known]
        return self.layout.markdown_files(self.root, "knowledge")

    def file_info(self, rel: str) -> tuple[str, list[str]]:
        """A knowledge file's title and planned sections (from its front matter, else its first heading)."""
        path = self.root / self.layout.real(rel)

        def compute(p: Path) -> tuple[str, list[str]]:
            try:
                meta = read_knowledge(p).meta
                return meta.title, [str(s) for s in meta.sections]
            except Exception:  # a broken front matter still shows up in the tree, by its name
                return p.stem, []

        try:
            return self._by_file.get("info", path, compute)
        except OSError:
            return Path(rel).stem, []

    def title(self, rel: str) -> str:
        return self.file_info(rel)[0]

    def listing(self) -> list[tuple[str, str, str, list[str]]]:
        """(rel, page, title, sections) of every knowledge file: what a build knows, else read now."""
        if self._known is not None:
            return self._known
        return [(rel, page_for_source(rel) or "", *self.file_info(rel)) for rel in self.knowledge_files()]

    @contextmanager
    def known_files(self, entries: list[tuple[str, str, str, list[str]]]):
        """Within it the knowledge files, titles and sections are ``entries`` (a build read them once)."""
        self.set_known(entries)
        try:
            yield self
        finally:
            self.set_known(None)

    def set_known(self, entries: list[tuple[str, str, str, list[str]]] | None) -> None:
        """Take ``entries`` as the knowledge files from now on (None: list them from disk again)."""
        self._known = entries
        self._known_results = None
        self._known_results = self.results() if entries is not None else None
        self._known_rels = {rel for rel, _, _, _ in entries or []}
        # Each folder's files, below it at any depth: a folder page reads its own, not the whole tree.
        self._known_under = {}
        for entry in entries or []:
            parts = entry[0].split("/")[:-1]
            for i in range(len(parts)):
                self._known_under.setdefault("/".join(parts[: i + 1]), []).append(entry)
        self._known_folders = set(self._known_under)

    def _listing_under(self, folder: str) -> list[tuple[str, str, str, list[str]]]:
        """The listing's entries below ``folder`` (at any depth)."""
        if self._known is not None:
            return self._known_under.get(folder, [])
        prefix = folder + "/"
        return [entry for entry in self.listing() if entry[0].startswith(prefix)]

    def tree(self, current: str | None = None, under: str = "knowledge") -> list[TreeTopic]:
        """The knowledge files below folder ``under``, by folder (the topic pages and the page without INDEX.md)."""
        topics: dict[str, TreeTopic] = {}
        for rel, page, title, _ in self._listing_under(under):
            folder = posixpath.dirname(rel)[len("knowledge/"):] if "/" in rel[len("knowledge/"):] else ""
            topic = topics.setdefault(
                folder, TreeTopic(name=folder or "(top level)", folder=posixpath.dirname(rel))
            )
            topic.files.append(TreeFile(rel=rel, page=page, title=title, current=page == current))
            topic.open = topic.open or page == current
        return [topics[k] for k in sorted(topics)]

    def nav_script(self) -> bytes:
        """``_static/nav-data.js``: every folder of knowledge/ with its files' pages and titles, for the sidebar."""
        folders: dict[str, list[list[str]]] = {}
        for rel, page, title, _ in self.listing():
            folders.setdefault(posixpath.dirname(rel), []).append([page, title])
        data = [[folder, folder[len("knowledge/"):] or "(top level)", files] for folder, files in sorted(folders.items())]
        payload = json.dumps({"folders": data}, ensure_ascii=False, separators=(",", ":"))
        return NAV_PREFIX + f"{payload};\n".encode("utf-8")

    def render(self, template: str, page: str, status: int = 200, root: str | None = None, **context: Any) -> Response:
        """A page from a jinja2 template, with the layout's common context."""
        context.setdefault("query", "")
        context.setdefault("static", False)
        context.setdefault("crumbs", [])
        html = self.templates.get_template(template).render(
            site_name=self.name(),
            page=page,
            root=root_prefix(page) if root is None else root,
            **context,
        )
        return Response(status, HTML, html.encode("utf-8"))

    def not_found(self, page: str) -> Response:
        # Only the live server answers 404s, so its links start at the server root, whatever the
        # request path was. Nothing of the request is echoed back: it may be a traversal attempt.
        return self.render("404.html", urls.HOME, status=404, root="/", title="Not found")

    def _crumbs(self, rel: str) -> list[dict[str, str]]:
        """The folders above a knowledge file, each linked to its topic page."""
        parts = posixpath.dirname(rel).split("/")
        return [{"name": part, "page": urls.topic_page("/".join(parts[: i + 1]))} for i, part in enumerate(parts)]

    def link_rewriter(self, source_rel: str, page: str):
        """How links in ``source_rel`` become links of ``page``: Markdown files become their pages,
        folders with knowledge their topic pages, other files of knowledge/ are published as they are."""
        deps = _DEPS.get()

        def rewrite(link: str, is_image: bool) -> str | None:
            if not link or link.startswith("#"):
                return link or None
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                return link if parts.scheme in ("http", "https", "mailto") and not is_image else None
            target_path = unquote(parts.path)
            if not target_path:
                return None
            rel = self.layout.link_target(source_rel, target_path)
            if rel is None:
                return None
            # Older trees link knowledge files relative to knowledge/ (e.g. from plans); a plan a file
            # links to may since have been filed under plans/completed/ by kb consolidate.
            candidates = [rel, f"knowledge/{rel}"]
            if rel.startswith("plans/") and posixpath.dirname(rel) == "plans":
                candidates.append(f"plans/completed/{posixpath.basename(rel)}")
            for candidate in candidates:
                if deps is not None:
                    deps.paths.add(candidate)
                if not is_image and self._topic_folder(urls.topic_page(candidate)) is not None:
                    return href(page, urls.topic_page(candidate))
                target = page_for_source(candidate)
                if target is None or not self._exists(candidate):
                    continue
                if is_image and candidate != target:
                    return None
                if candidate == target and deps is not None:
                    deps.assets.add(candidate)  # a file of the tree, published beside the pages
                if parts.fragment and "#" not in target:
                    target += f"#{parts.fragment}"
                return href(page, target)
            return None

        return rewrite

    def _plan_page(self, plan: str | None) -> str | None:
        """The plans-page anchor of the plan a file or drop names (found under completed/ too)."""
        if not plan:
            return None
        name = posixpath.basename(plan)
        deps = _DEPS.get()
        mapped = () if self.layout.default else (self.layout.source(plan),)
        for candidate in (*mapped, plan, f"plans/{name}", f"plans/completed/{name}"):
            if deps is not None:
                deps.paths.add(candidate)
            if self.layout.file(self.root, candidate, "plans") is not None:
                return f"{urls.PLANS}#{urls.plan_anchor(candidate)}"
        return None

    def _badge_maker(self, rel: str, results: Results, found: dict[int, Any]):
        def badge(fence: Fence, fence_lines: set[int]) -> tuple[str, str]:
            match = found[fence.index] = results.lookup(rel, fence, fence_lines)
            if match is None:
                return (
                    '<span class="badge none" title="snippets/results.json has no result for this block '
                    '(run kb validate-snippets)">not yet run</span>',
                    "",
                )
            result = match.result
            label = result.label
            if result.reason and result.status != "pass":
                label += f": {result.reason}"
            tip = f"{result.status}: {result.reason}" if result.reason else result.status
            css = result.badge_class
            if match.stale:
                label += " (code changed since)"
                tip = "the code changed after this result; run kb validate-snippets again. Last " + tip
                css += " stale"
            anchor = f"snippet-{fence.index}-result"
            bar = f'<a class="badge {css}" href="#{anchor}" title="{escape(tip)}">{escape(label)}</a>'
            return bar, self.templates.get_template("result.html").render(
                anchor=anchor, result=result, css=css, stale=match.stale, label=label
            )

        return badge

    # ----- pages -------------------------------------------------------------------------

    def home_page(self) -> Response:
        if safe_file(self.root, "INDEX.md") is None:
            return self.render("home.html", urls.HOME, title="Index", tree=self.tree())
        return self.markdown_page(urls.HOME, "INDEX.md", "")

    def markdown_page(self, page: str, rel: str, within: str) -> Response | None:
        """A knowledge file (with its header and snippet results), INDEX.md or SKILL.md."""
        path = self.layout.file(self.root, rel, within)
        if path is None:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        doc: KnowledgeDoc | None = None
        problem = None
        if within == "knowledge":
            try:
                doc = read_knowledge(path)
            except Exception as exc:  # bad YAML: still show the text, and say why the header is missing
                problem = f"the front matter could not be read: {exc}"
        results = self.results() if within == "knowledge" else Results()
        matches: dict[int, Any] = {}
        rendered = render_file(
            self.md, text, self.link_rewriter(rel, page), self._badge_maker(rel, results, matches) if within else None
        )
        deps = _DEPS.get()
        if deps is not None and within == "knowledge":
            title = (doc.meta.title if doc else None) or path.stem
            deps.sections = _split_sections(page, title, text, rendered.headings, rendered.body_start)
            deps.info = (title, [str(s) for s in doc.meta.sections] if doc else [])
        counts: dict[str, dict[str, Any]] = {}
        lines = {f.line for f in rendered.fences}
        for fence in rendered.fences:
            found = matches[fence.index] if fence.index in matches else results.lookup(rel, fence, lines)
            if found is None:
                key, css = "not yet run", "none"
            elif found.stale:
                key, css = "changed since their run", "stale"
            else:
                key, css = found.result.count_label, found.result.badge_class
            entry = counts.setdefault(key, {"css": css, "n": 0})
            entry["n"] += 1
        sources = []
        if doc is not None:
            rewrite = self.link_rewriter("", page)
            for source in doc.meta.sources:
                link = None
                if source.kind == "web" and source.locator.startswith(("http://", "https://")):
                    link = source.locator
                elif source.kind == "knowledge":
                    link = rewrite(source.locator, False)
                sources.append({"ref": source, "href": link})
        plan_page = self._plan_page(doc.meta.plan) if doc is not None else None
        return self.render(
            "markdown.html",
            page,
            title=(doc.meta.title if doc else None) or (rendered.headings[0].text if rendered.headings else rel),
            rel=rel,
            doc=doc,
            meta=doc.meta if doc is not None and doc.has_front_matter else None,
            edited=_edited_by_hand(doc),
            plan_href=href(page, plan_page) if plan_page else None,
            sources=sources,
            problem=problem or results.problem,
            rendered=rendered,
            toc=[h for h in rendered.headings if 2 <= h.level <= 3],
            snippet_counts=counts,
            is_knowledge=within == "knowledge",
            crumbs=self._crumbs(rel) if within == "knowledge" else [],
        )

    def drop_page(self, page: str, rel: str) -> Response | None:
        path = self.layout.file(self.root, rel, "drops")
        if path is None:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            drop = read_drop(path)
        except Exception:
            drop = None
        if drop is not None:
            text = _without_header_keys(text)
        rendered = render_file(self.md, text, self.link_rewriter(rel, page))
        target = None
        if drop is not None and drop.knowledge_file:
            target = self.link_rewriter("", page)(drop.knowledge_file, False)
        plan_page = self._plan_page(drop.plan) if drop is not None else None
        return self.render(
            "drop.html",
            page,
            title=(drop.title if drop else None) or Path(rel).stem,
            rel=rel,
            drop=drop,
            target_href=target,
            plan_href=href(page, plan_page) if plan_page else None,
            rendered=rendered,
        )

    def _exists(self, rel: str) -> bool:
        """Whether a workspace file a link names is there (inside the workspace); a build's listing answers for knowledge files."""
        if self._known is not None and rel.startswith("knowledge/") and rel.endswith(".md"):
            return rel in self._known_rels
        return self.layout.file(self.root, rel) is not None

    def _folder_has_markdown(self, folder: str) -> bool:
        """Whether a folder holds a knowledge file somewhere below it (else it has no page)."""
        if self._known is not None:
            return folder in self._known_folders
        for dirpath, dirnames, filenames in os.walk(self.root / self.layout.real(folder)):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            if any(name.endswith(".md") and not name.startswith(".") for name in filenames):
                return True
        return False

    def _topic_folder(self, page: str) -> str | None:
        """The knowledge folder a ``.../index.html`` topic page lists: a real folder inside knowledge/
        with a knowledge file somewhere in it (a folder of images only has no page: its links are unresolved)."""
        if not page.endswith("/index.html"):
            return None
        folder = page[: -len("/index.html")]
        if folder != "knowledge" and not folder.startswith("knowledge/"):
            return None
        if self._known is not None and folder not in self._known_folders:
            return None  # a build's listing: no knowledge file below it, so no page
        top = (self.root / self.layout.real("knowledge")).resolve()
        try:
            resolved = (self.root / self.layout.real(folder)).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        inside = top.is_relative_to(self.root) and resolved.is_relative_to(top)
        if not (inside and resolved.is_dir()):
            return None
        return folder if self._folder_has_markdown(folder) else None

    def topic_page(self, page: str) -> Response | None:
        """A folder of knowledge/: its files (title, sections) and its sub-folders."""
        folder = self._topic_folder(page)
        if folder is None:
            return None
        topics = self.tree(page, under=folder)
        sections = {rel: secs for rel, _, _, secs in self._listing_under(folder)}
        entries = [
            {"topic": topic, "files": [{"file": f, "sections": sections.get(f.rel, [])} for f in topic.files]}
            for topic in topics
        ]
        name = folder[len("knowledge/"):] if folder != "knowledge" else "knowledge"
        crumbs = self._crumbs(folder + "/x")[:-1] if folder != "knowledge" else []
        return self.render("topic.html", page, title=name, folder=folder, name=name, entries=entries, crumbs=crumbs)

    def plans_page(self) -> Response:
        drops = load_drops(self.root, self.layout)
        plans, orphans = load_plans(self.root, drops, self.layout)
        return self.render(urls.PLANS, urls.PLANS, title="Plans", plans=plans, orphans=orphans, drops=drops)

    def search_index(self) -> SectionIndex:
        """The BM25 index of the knowledge tree's sections, rebuilt when any knowledge file changed."""
        files = self.knowledge_files()
        key = []
        for rel in files:
            try:
                st = (self.root / self.layout.real(rel)).stat()
            except OSError:
                continue
            key.append((rel, st.st_mtime_ns, st.st_size))
        with self._search_lock:
            if self._search_key == tuple(key) and self._search_index is not None:
                return self._search_index
            sections: list[Section] = []
            for rel, _, _ in key:
                if self.layout.file(self.root, rel, "knowledge") is None:
                    continue
                try:
                    # Only files that changed are parsed again; the BM25 index itself is rebuilt whole.
                    sections.extend(self._by_file.get("sections", self.root / self.layout.real(rel), self._sections))
                except (OSError, UnicodeError):
                    continue
            self._search_index = SectionIndex(sections)
            self._search_key = tuple(key)
            return self._search_index

    def sections_of(self, rel: str) -> list[Section]:
        """A knowledge file split at its headings, as the search indexes it (cached by the file's stat)."""
        return self._by_file.get("sections", self.root / self.layout.real(rel), self._sections)

    def _sections(self, path: Path) -> list[Section]:
        """A knowledge file split at its headings (text above the first one is a section too)."""
        rel = self.layout.source(path.relative_to(self.root).as_posix())  # ``path`` is root/rel, links not resolved
        text = path.read_text(encoding="utf-8", errors="replace")
        tokens, headings, _ = parse_file(self.md, text)
        start = tokens[0].map[1] if tokens and tokens[0].type == "front_matter" and tokens[0].map else 0
        return _split_sections(page_for_source(rel) or "", self.title(rel), text, headings, start)

    def search_page(self, query: str, static: bool) -> Response:
        hits = self.search_index().search(query) if query.strip() and not static else []
        return self.render("search.html", urls.SEARCH, title="Search", query=query, hits=hits, static=static)

    def static_file(self, name: str) -> Response | None:
        if name == urls.NAV_DATA:
            # Every page loads it: the browser keeps it and asks whether it changed (304 when not).
            body = self.nav_script()
            tag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            return Response(200, JS, body, {"Cache-Control": "no-cache", "ETag": tag})
        if name not in STATIC_FILES:
            return None
        data = (resources.files("kb.serve") / "static" / name).read_text(encoding="utf-8")
        if name == "kb.css":
            data += "\n/* pygments */\n" + pygments_css()
        elif name == "search.js":
            data = data.replace("%STOPWORDS%", json.dumps(sorted(STOPWORDS)))
        return Response(200, STATIC_FILES[name], data.encode("utf-8"))

    def asset(self, rel: str) -> Response | None:
        path = self.layout.file(self.root, rel, "knowledge")
        kind = urls.asset_type(rel)
        if path is None or kind is None:
            return None
        data = path.read_bytes()
        if kind.startswith("text/plain"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                kind = "application/octet-stream"
        return Response(200, kind, data, dict(ASSET_HEADERS))

    # ----- the static site ---------------------------------------------------------------

    def document_pages(self) -> list[tuple[str, str]]:
        """(URL path, source file) of every page rendered from one Markdown file: knowledge, drops, INDEX, SKILL."""
        pages = [(urls.HOME, "INDEX.md")]
        if safe_file(self.root, "SKILL.md") is not None:
            pages.append((urls.SKILL, "SKILL.md"))
        pages += [(page_for_source(rel) or "", rel) for rel in self.knowledge_files()]
        pages += [(page_for_source(rel) or "", rel) for rel in self.layout.markdown_files(self.root, "drops")]
        return pages

    def topic_pages(self) -> list[str]:
        """The URL path of every folder page: knowledge/ and each folder with a knowledge file below it."""
        folders = {"knowledge"}
        for rel in self.knowledge_files():
            parts = rel.split("/")[:-1]
            folders.update("/".join(parts[: i + 1]) for i in range(1, len(parts)))
        return [urls.topic_page(folder) for folder in sorted(folders)]



def _split_sections(page: str, title: str, text: str, headings, start: int) -> list[Section]:
    """A file's text split at its headings; ``start`` is the first line after its front matter."""
    lines = text.splitlines()
    out: list[Section] = []
    first = headings[0].line - 1 if headings else len(lines)
    lead = "\n".join(lines[start:first]).strip()
    if lead:
        out.append(Section(page, "", title, title, lead))
    for i, heading in enumerate(headings):
        end = headings[i + 1].line - 1 if i + 1 < len(headings) else len(lines)
        body = "\n".join(lines[heading.line : end])
        if body.strip():  # a heading right above another one is found through that one
            out.append(Section(page, heading.id, heading.text, title, body))
    return out


def _edited_by_hand(doc: KnowledgeDoc | None) -> bool:
    """Whether the body changed since kb wrote it.

    python-frontmatter strips the body's final newline, which write_knowledge hashed, so
    ``KnowledgeDoc.edited_by_hand`` alone would call every kb-written file edited.
    """
    if doc is None or not doc.meta.content_hash:
        return False
    return doc.meta.content_hash not in (sha256_text(doc.body), sha256_text(doc.body + "\n"))


def _when(value: object) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM' (UTC kept visible); anything else unchanged."""
    text = str(value or "")
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]00:?00)?$", text)
    if not match:
        return text
    return f"{match.group(1)} {match.group(2)}" + (" UTC" if match.group(3) else "")


# Bold-key lines of a drop that its header card already shows.
_HEADER_KEY = re.compile(
    r"^\*\*(Created|Part|Batch|Plan|Target File|Status|Engine)\*\*\s*:.*\n?", re.I | re.M
)


def _without_header_keys(text: str) -> str:
    """A drop's text less the bold-key lines above its first section (the page header shows them)."""
    head, sep, rest = text.partition("\n## ")
    return _HEADER_KEY.sub("", head) + sep + rest
