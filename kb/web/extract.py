"""Page text: trafilatura turns HTML into Markdown (no regexes); markdown-it splits it into passages."""

from __future__ import annotations

from dataclasses import dataclass, field

import trafilatura
from markdown_it import MarkdownIt

EXTRACTOR = f"trafilatura-{trafilatura.__version__}"
_MD = MarkdownIt("commonmark")


@dataclass
class Extracted:
    title: str | None
    text: str  # Markdown: headings, paragraphs, lists, fenced code


@dataclass
class Chunk:
    """One passage of a page: prose (plain text) and the code blocks that came with it."""

    heading: str | None
    text: str
    examples: list[str] = field(default_factory=list)


def extract_html(html: bytes | str, url: str | None = None) -> Extracted:
    """Main content of an HTML page (navigation, ads, footers dropped) as Markdown, and its title."""
    tree = trafilatura.load_html(html)
    if tree is None:
        return Extracted(title=None, text="")
    # extensive=False: only the title is used, and the extensive date search costs seconds a page.
    meta = trafilatura.extract_metadata(tree, extensive=False)
    text = trafilatura.extract(
        trafilatura.load_html(html),  # extract() prunes the tree it is given
        url=url,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        include_links=False,
        favor_recall=True,
    )
    if not text:
        # Pages too short or too odd for the main-content heuristics: take all visible text.
        text = trafilatura.html2txt(html) or ""
    return Extracted(title=(meta.title if meta and meta.title else None), text=text.strip())


def _inline_text(token) -> str:
    out: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "text_special"):
            out.append(child.content)
        elif child.type == "code_inline":
            out.append(f"`{child.content}`")
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
    return "".join(out).strip()


def split_passages(markdown: str, max_chars: int = 900) -> list[Chunk]:
    """Split Markdown into passages of about ``max_chars``: a heading starts a new one, code rides along."""
    chunks: list[Chunk] = []
    heading: str | None = None
    texts: list[str] = []
    examples: list[str] = []

    def flush() -> None:
        nonlocal texts, examples
        if texts or examples:
            chunks.append(Chunk(heading=heading, text="\n".join(texts).strip(), examples=examples))
        texts, examples = [], []

    tokens = _MD.parse(markdown)
    in_heading = False
    for token in tokens:
        if token.type == "heading_open":
            flush()
            in_heading = True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline":
            text = _inline_text(token)
            if in_heading:
                heading = text or heading
            elif text:
                if texts and sum(len(t) for t in texts) + len(text) > max_chars:
                    flush()
                texts.append(text)
        elif token.type in ("fence", "code_block"):
            code = token.content.rstrip("\n")
            if code.strip():
                examples.append(code)
    flush()
    return [c for c in chunks if c.text or c.examples]
