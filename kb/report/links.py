"""What a reader of a knowledge file meets beyond its citations: relative links that lead nowhere, and
excerpts (examples, quotes) that another file already shows.

A link is checked as a Markdown viewer follows it: the path relative to the file (``/`` from the
workspace root), percent-escapes undone, and for a Markdown target its ``#anchor`` against the
target's headings, slugged as GitHub and markdown-it-anchors slug them. Links with a scheme
(``https:``, ``mailto:``) are not followed: the report never reaches the network.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from mdit_py_plugins.anchors.index import slugify

from kb.engine.check import headings, prose_lines
from kb.mdblocks import parse_blocks

# [text](target "title") and ![alt](target); the target in <...> may hold spaces.
_INLINE = re.compile(r"!?\[(?:[^\[\]\n]|\[[^\]\n]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*(<[^>\n]*>|\S+)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
MARKDOWN = (".md", ".markdown")
MIN_EXCERPT_CHARS = 60  # a one-liner ("import torch") shared by two files is no repeated excerpt


@dataclass
class BrokenLink:
    """A relative link of a file that does not lead where it says: its 1-based body line, target and why."""

    line: int
    target: str
    why: str


def relative_links(body: str, tokens=None) -> list[tuple[int, str]]:
    """(1-based body line, target) of every relative link and image outside code."""
    tokens = parse_blocks(body) if tokens is None else tokens
    out = []
    for n, line in prose_lines(body, tokens):
        targets = [m.group(1) for m in _INLINE.finditer(line)]
        reference = _REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        for target in targets:
            target = target[1:-1] if target.startswith("<") and target.endswith(">") else target
            if target and not _SCHEME.match(target):
                out.append((n, target))
    return out


def heading_anchors(text: str) -> frozenset[str]:
    """The anchors a viewer gives the headings of a Markdown text (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for _level, title, _line in headings(parse_blocks(text)):
        slug = slugify(title)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(out)


@functools.lru_cache(maxsize=512)
def _anchors_of(path: Path, mtime_ns: int) -> frozenset[str]:
    try:
        return heading_anchors(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return frozenset()


def broken_links(root: Path, rel: str, body: str, tokens=None) -> list[BrokenLink]:
    """The relative links of the file ``rel`` (workspace-relative, its text ``body``) that resolve to nothing."""
    root = root.resolve()
    here = (root / rel).parent
    out = []
    for line, target in relative_links(body, tokens):
        path_part, _, anchor = target.partition("#")
        path_part = unquote(path_part.split("?", 1)[0])
        if not path_part:  # "#anchor" in the file itself
            if anchor and unquote(anchor) not in heading_anchors(body):
                out.append(BrokenLink(line, target, "no heading of this file has that anchor"))
            continue
        dest = (root / path_part.lstrip("/")) if path_part.startswith("/") else (here / path_part)
        dest = Path(_normalize(dest))
        if root not in dest.parents and dest != root:
            out.append(BrokenLink(line, target, "leads outside the workspace"))
        elif not dest.exists():
            out.append(BrokenLink(line, target, "no such file"))
        elif anchor and dest.is_file() and dest.suffix.lower() in MARKDOWN:
            if unquote(anchor) not in _anchors_of(dest, dest.stat().st_mtime_ns):
                out.append(BrokenLink(line, target, f"no heading of {dest.name} has that anchor"))
    return out


def _normalize(path: Path) -> str:
    """``a/b/../c`` as ``a/c`` without following symlinks (a link is read as text, as a viewer reads it)."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if len(parts) > 1:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return str(Path(*parts)) if parts else str(path)


MIN_SENTENCE_CHARS = 80  # a sentence this long said again in a later file's quote or list is a repeat
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*(\"'])")
_LEAD = re.compile(r"^(?:\*\*[A-Za-z ]{1,30}:\*\*\s*)")  # "**Warning:**" before the sentence


def excerpts(body: str, tokens=None) -> list[str]:
    """The file's examples (fenced code) and quoted passages (block quotes), whitespace-normalized, long enough to count;
    and the long sentences of its quotes and list items (two files may quote one sentence in different blocks)."""
    tokens = parse_blocks(body) if tokens is None else tokens
    lines = body.splitlines()
    out = []
    depth = 0
    for token in tokens:
        if token.type == "fence":
            text = token.content
        elif token.type == "blockquote_open":
            depth += 1
            if depth > 1 or not token.map:
                continue
            text = "\n".join(re.sub(r"^\s*>\s?", "", line) for line in lines[token.map[0]:token.map[1]])
        elif token.type == "blockquote_close":
            depth -= 1
            continue
        elif token.type == "list_item_open" and token.map:
            text = re.sub(r"^\s*(?:[-*+]|\d+\.)\s+", "", "\n".join(lines[token.map[0]:token.map[1]]))
            if not re.match(r"\[\d+\]", text):  # a source list's entry ("[6] [title](link)") names, not quotes
                out += long_sentences(text)
            continue
        else:
            continue
        text = " ".join(text.split())
        if len(text) >= MIN_EXCERPT_CHARS:
            out.append(text)
            if token.type == "blockquote_open":
                out += [s for s in long_sentences(text) if s != text]
    return out


def long_sentences(text: str) -> list[str]:
    """The sentences of ``text`` long enough that another file saying one again repeats it, whitespace-normalized and
    less a leading "**Warning:**" (the offline writer avoids what this counts: kb.engine.offline.owners)."""
    pieces = (_LEAD.sub("", piece.strip()) for piece in _SENTENCE_END.split(" ".join(text.split())))
    return [piece for piece in pieces if len(piece) >= MIN_SENTENCE_CHARS]


def repeated_excerpts(files: Iterable[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """{file: its excerpts that an earlier file (in the order given) already shows, each as its first 80 characters}."""
    first: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for rel, found in files:
        for text in dict.fromkeys(found):
            if text in first and first[text] != rel:
                out.setdefault(rel, []).append(text[:80])
            else:
                first.setdefault(text, rel)
    return out
