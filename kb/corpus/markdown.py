"""Markdown and text files as corpus documents: one per ``##`` section (or per chunk of a text file)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import frontmatter
from mdit_py_plugins.anchors.index import slugify

from kb.corpus.documents import CorpusDoc

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_CITATION = re.compile(r"\s?\[\d+(?:\s*[,;–-]\s*\d+)*\]")  # [3], [1, 2]: that file's own numbering
SKIP_HEADINGS = {"sources", "references", "source documents", "web research", "table of contents", "contents"}
MIN_TEXT = 40
MAX_CHARS = 8000  # longer sections are cut into pieces: one huge passage drowns every query
TEXT_CHUNK = 1500
PYTHON = {"python", "py", "python3"}


def read_markdown(path: Path) -> tuple[dict, str]:
    """Front matter (possibly empty) and body of a Markdown file; bad front matter reads as body."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        post = frontmatter.loads(text)
        return dict(post.metadata), post.content
    except Exception:
        return {}, text


def _python_ok(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return bool(code.strip())


def _sections(body: str) -> list[tuple[str | None, list[str], list[str]]]:
    """(heading, prose lines, python examples) per ``##`` section; the heading is None above the first."""
    out: list[tuple[str | None, list[str], list[str]]] = [(None, [], [])]
    fence: str | None = None
    lang = ""
    code: list[str] = []
    for line in body.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence, lang, code = match.group(1), match.group(2).lower(), []
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                if lang in PYTHON and _python_ok("\n".join(code)):
                    out[-1][2].append("\n".join(code).strip("\n"))
                fence = None
            else:
                code.append(line)
            continue
        heading = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if heading:
            out.append((heading.group(1).strip(), [], []))
        else:
            out[-1][1].append(line)
    return out


def _clean(lines: list[str]) -> str:
    text = "\n".join(lines)
    text = _CITATION.sub("", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _pieces(text: str) -> list[str]:
    if len(text) <= MAX_CHARS:
        return [text]
    out, current = [], ""
    for para in text.split("\n\n"):
        if current and len(current) + len(para) > MAX_CHARS:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    return out + ([current] if current else [])


def markdown_docs(path: Path, rel: str, kind: str) -> list[CorpusDoc]:
    """One document per ``##`` section of a Markdown file (located as ``rel#anchor``)."""
    meta, body = read_markdown(path)
    title = str(meta.get("title") or "").strip()
    if not title:
        first = re.search(r"(?m)^#\s+(.+?)\s*#*\s*$", body)
        title = first.group(1).strip() if first else Path(rel).stem
    docs: list[CorpusDoc] = []
    for heading, lines, examples in _sections(body):
        if heading and heading.lower().strip(": ") in SKIP_HEADINGS:
            continue
        if heading is None:
            lines = [ln for ln in lines if not re.match(r"^#\s+", ln)]
        text = _clean(lines)
        if len(text) < MIN_TEXT and not examples:
            continue
        locator = f"{rel}#{slugify(heading)}" if heading else rel
        shown = f"{title} — {heading}" if heading else title
        for n, piece in enumerate(_pieces(text)):
            docs.append(CorpusDoc(kind=kind, locator=locator, title=shown, text=piece,
                                  examples=examples if n == 0 else [], source=title,
                                  keywords=f"{heading or ''} {heading or ''} {title}"))
    return docs


def text_docs(path: Path, rel: str, kind: str) -> list[CorpusDoc]:
    """A plain-text file in chunks of paragraphs, located by line range (``rel#L10-L42``)."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    docs: list[CorpusDoc] = []
    start, chunk = 0, []
    for i, line in enumerate([*lines, ""]):
        if not line.strip() and chunk and sum(len(c) for c in chunk) >= TEXT_CHUNK or i == len(lines):
            text = "\n".join(chunk).strip()
            if len(text) >= MIN_TEXT:
                docs.append(CorpusDoc(kind=kind, locator=f"{rel}#L{start + 1}-L{i}", title=f"{Path(rel).name} (lines {start + 1}-{i})",
                                      text=re.sub(r"\n{3,}", "\n\n", text), source=Path(rel).name))
            start, chunk = i + 1, []
            continue
        if not chunk and not line.strip():
            start = i + 1
            continue
        chunk.append(line)
    return docs
