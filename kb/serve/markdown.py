"""Markdown to HTML for the site: markdown-it-py with GFM (tables, task lists, footnotes, autolinks),
GitHub-style heading anchors, pygments highlighting, a result badge and the result itself
on every fenced code block, and links rewritten by the caller.

Raw HTML in a knowledge file is kept as a Markdown viewer would show it (``<br>`` in a
table cell, ``<sup>``, ``<details>``), after nh3 removed everything that can run script
(kb.serve.sanitize); HTML comments such as INDEX.md's ``<!-- kb:index:start -->`` markers
are dropped. Code blocks are highlighted by pygments from escaped text and set in after
the sanitiser ran, so it never walks the highlighted spans.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape, unescape

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from kb.serve import sanitize

# The pygments CSS class the highlighted blocks carry (the stylesheet is built for it).
HIGHLIGHT_CLASS = "highlight"


@dataclass
class Heading:
    level: int
    id: str
    text: str
    line: int  # 1-based line of the heading in the file


@dataclass
class Fence:
    index: int  # 0-based position among the file's fenced blocks
    line: int  # 1-based line of the opening fence in the file
    language: str
    info: str
    code: str


@dataclass
class Rendered:
    """A rendered file: its leading H1 (when it opens the file) apart, so a header can follow it."""

    head_html: str
    body_html: str
    headings: list[Heading] = field(default_factory=list)
    fences: list[Fence] = field(default_factory=list)
    body_start: int = 0  # 0-based line after the front matter


LinkRewriter = Callable[[str, bool], "str | None"]  # (href, is_image) -> new href, or None: not resolvable
# (fence, all fence lines) -> (badge HTML for the block's bar, the result's HTML under the code)
BadgeMaker = Callable[[Fence, "set[int]"], "tuple[str, str]"]


def make_markdown() -> MarkdownIt:
    """The parser every page uses (safe to share between threads: state lives in ``env``)."""
    md = MarkdownIt("commonmark", {"html": True, "linkify": False})
    try:
        from mdit_py_plugins.gfm import gfm_plugin

        md.use(gfm_plugin, front_matter=True)
    except (ImportError, RuntimeError):
        # markdown-it-py < 4.1 (a package beside kb may pin it below 4): the same GFM
        # pieces from plugins, less the autolinking of bare URLs.
        md.enable(["table", "strikethrough"])
        md.use(tasklists_plugin).use(footnote_plugin).use(front_matter_plugin)
    md.use(anchors_plugin, min_level=1, max_level=6, permalink=True, permalinkSymbol="#", permalinkBefore=False)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("html_block", _render_html_block)
    md.add_render_rule("html_inline", _render_html_inline)
    return md


@lru_cache(maxsize=256)
def _lexer(language: str):
    # Lexers and the formatter keep no state between calls: one of each serves every block.
    if not language:
        return TextLexer()
    try:
        return get_lexer_by_name(language)
    except ClassNotFound:
        return TextLexer()


_FORMATTER = HtmlFormatter(nowrap=True)


@lru_cache(maxsize=4096)
def highlight_code(code: str, language: str) -> str:
    """Pygments HTML for ``code`` (spans only, no wrapper)."""
    return highlight(code, _lexer(language), _FORMATTER)


def _render_fence(self, tokens: list[Token], idx: int, options, env) -> str:
    token = tokens[idx]
    fence: Fence = token.meta["kb_fence"]
    badge, result = env["kb_badge"](fence, env["kb_fence_lines"]) if env.get("kb_badge") else ("", "")
    lang = escape(fence.language) if fence.language else "text"
    env["kb_fences_html"].append(
        f'<figure class="snippet" id="snippet-{fence.index}" data-line="{fence.line}">'
        f'<figcaption class="snippet-bar"><span class="lang">{lang}</span>'
        f'<span class="where">line {fence.line}</span>{badge}</figcaption>'
        f'<pre class="{HIGHLIGHT_CLASS}"><code>{highlight_code(fence.code, fence.language)}</code></pre>{result}</figure>\n'
    )
    # Plain text the sanitiser keeps as it is; the block replaces it once the page is clean.
    return f"<p>{env['kb_nonce']}F{len(env['kb_fences_html']) - 1}</p>\n"


def _render_html_block(self, tokens, idx, options, env) -> str:
    return tokens[idx].content  # sanitised with the rest of the page (comments go then)


def _render_html_inline(self, tokens, idx, options, env) -> str:
    return tokens[idx].content


def _inline_text(token: Token | None) -> str:
    if token is None or not token.children:
        return token.content if token is not None else ""
    return "".join(c.content for c in token.children if c.type in ("text", "code_inline", "html_inline"))


def _rewrite_links(tokens: list[Token], links: LinkRewriter, nonce: str) -> None:
    """Markdown links and images become links of this site; the ones that resolve carry ``nonce``
    so the sanitiser tells them from the links raw HTML makes (those it rewrites itself)."""
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                new = links(href, False)
                if new is None:
                    # Not a page of this site: keep the text, drop the dead link, say why on hover.
                    del child.attrs["href"]
                    child.attrSet("class", "unresolved")
                    child.attrSet("title", f"not in this site: {href}")
                else:
                    child.attrSet("href", nonce + new)
                    if "://" in new or new.startswith("mailto:"):
                        child.attrSet("class", "external")
                        child.attrSet("rel", "noopener noreferrer")
            elif child.type == "image":
                src = str(child.attrGet("src") or "")
                new = links(src, True)
                if new is None:
                    # A missing image is its alt text, marked, never an <img> that cannot load.
                    alt = "".join(c.content for c in child.children or []) or src
                    child.type, child.tag, child.children = "html_inline", "", None
                    child.content = (f'<span class="unresolved" title="{escape("image not in this site: " + src)}">'
                                     f"{escape(alt)}</span>")
                else:
                    child.attrSet("src", nonce + new)


def _attribute_filter(links: LinkRewriter, nonce: str, unresolved: list[str]):
    def attribute(tag: str, name: str, value: str) -> str | None:
        if name not in ("href", "src"):
            return value
        if value.startswith(nonce):
            return value[len(nonce):]  # a Markdown link, rewritten already
        if value.startswith("#"):
            return value
        new = links(value, tag == "img")  # raw HTML's own link: rewritten the same way
        if new is None and (tag, name) in (("img", "src"), ("a", "href")):
            # Marked once the page is clean, as a Markdown image or link that leads nowhere is.
            unresolved.append(value)
            return f"{nonce}U{len(unresolved) - 1}"
        return new

    return attribute


# A tag as the sanitiser writes it: attribute values always in double quotes, '"' escaped.
_TAG = re.compile(r'<(img|a)((?:\s+[^\s="\'>/]+(?:="[^"]*")?)*)\s*/?>')
_ATTR = re.compile(r'([^\s="\'>/]+)(?:="([^"]*)")?')


def _mark_unresolved(html: str, nonce: str, unresolved: list[str]) -> str:
    """Raw ``<img>`` and ``<a>`` whose target is not in the site, marked like Markdown ones: an image
    becomes its alt text (never an ``<img>`` that cannot load), a link keeps its text without a target."""
    marker = f"{nonce}U"

    def mark(match: re.Match) -> str:
        attrs = {name: unescape(value or "") for name, value in _ATTR.findall(match.group(2))}
        key = "src" if match.group(1) == "img" else "href"
        value = attrs.get(key, "")
        if not value.startswith(marker):
            return match.group(0)
        target = unresolved[int(value[len(marker):])]
        if key == "src":
            text = attrs.get("alt") or target
            return f'<span class="unresolved" title="{escape("image not in this site: " + target)}">{escape(text)}</span>'
        return f'<a class="unresolved" title="{escape("not in this site: " + target)}">'

    return _TAG.sub(mark, html) if marker in html else html


def parse_file(md: MarkdownIt, text: str) -> tuple[list[Token], list[Heading], list[Fence]]:
    """Tokens of a whole file (front matter included, so token lines are file lines), its headings and fences."""
    tokens = md.parse(text, {})
    headings: list[Heading] = []
    fences: list[Fence] = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            headings.append(
                Heading(
                    level=int(token.tag[1]),
                    id=str(token.attrGet("id") or ""),
                    text=_inline_text(tokens[i + 1] if i + 1 < len(tokens) else None).strip(),
                    line=(token.map[0] + 1) if token.map else 0,
                )
            )
        elif token.type == "fence":
            parts = token.info.strip().split(maxsplit=1)
            fence = Fence(
                index=len(fences),
                line=(token.map[0] + 1) if token.map else 0,
                language=parts[0].lower() if parts else "",
                info=token.info.strip(),
                code=token.content,
            )
            token.meta["kb_fence"] = fence
            fences.append(fence)
    return tokens, headings, fences


_FENCE_MARK = re.compile(r"<p>(kb[0-9a-f]{16})F(\d+)</p>\n?")


def render_file(md: MarkdownIt, text: str, links: LinkRewriter, badge: BadgeMaker | None = None) -> Rendered:
    """Render a Markdown file, sanitised, with its links rewritten and a badge on every fenced block."""
    tokens, headings, fences = parse_file(md, text)
    nonce = "kb" + secrets.token_hex(8)
    _rewrite_links(tokens, links, nonce)
    env = {"kb_badge": badge, "kb_fence_lines": {f.line for f in fences}, "kb_fences_html": [], "kb_nonce": nonce}
    start = 1 if tokens and tokens[0].type == "front_matter" else 0
    split = start
    # The H1 that opens the file is rendered apart so the page can put the file's header under it.
    if len(tokens) >= start + 3 and tokens[start].type == "heading_open" and tokens[start].tag == "h1":
        split = start + 3
    unresolved: list[str] = []
    attribute = _attribute_filter(links, nonce, unresolved)
    head = sanitize.clean(md.renderer.render(tokens[start:split], md.options, env), attribute)
    body = sanitize.clean(md.renderer.render(tokens[split:], md.options, env), attribute)
    if unresolved:
        head, body = _mark_unresolved(head, nonce, unresolved), _mark_unresolved(body, nonce, unresolved)
    if env["kb_fences_html"]:
        blocks = env["kb_fences_html"]
        # One pattern for every page (a pattern with the nonce in it would be compiled anew per page).
        body = _FENCE_MARK.sub(lambda m: blocks[int(m.group(2))] if m.group(1) == nonce else m.group(0), body)
    body_start = tokens[0].map[1] if start and tokens[0].map else 0
    return Rendered(head_html=head, body_html=body, headings=headings, fences=fences, body_start=body_start)


def pygments_css() -> str:
    """The stylesheet for highlighted blocks."""
    return HtmlFormatter(style="default").get_style_defs(f".{HIGHLIGHT_CLASS}")
