"""Turning an LLM reply into one section's body kb can check.

The reply is unwrapped (a ```markdown fence, front matter), its own heading and anything past its
section (another section's heading, a Sources list) dropped, URLs removed (a passage is cited by its
number; kb writes the source list) and citation groups written ``[1][2]``. Whether each ``[n]`` names
a passage that supports its sentence is kb.llm.support's job. Code is never touched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import frontmatter
from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark")
_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+|\s*[-–]\s*\d+)*)\](?![(:])")
_LINK = re.compile(r"\[([^\]\n]*)\]\((https?://[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BARE_URL = re.compile(r"<?https?://[^\s<>()\]]+>?")
_SOURCES_HEADINGS = {"sources", "references", "bibliography", "citations", "works cited", "source documents", "web research"}


def json_list(text: str) -> list | None:
    """The JSON array a reply holds (models wrap it in prose or a fence), or None when it holds none kb can read."""
    match = re.search(r"\[.*\]", text, re.S)
    try:
        items = json.loads(match.group(0)) if match else None
    except ValueError:
        return None
    return items if isinstance(items, list) else None


def _unwrap(text: str) -> str:
    """A reply wrapped whole in a ```markdown fence, or opened by front matter, is unwrapped."""
    lines = text.strip().splitlines()
    # Inner fences would close a Markdown parser's outer fence early, so look at the first and last lines.
    if len(lines) >= 2 and lines[0].strip().lower() in ("```", "```markdown", "```md", "~~~markdown", "~~~md") \
            and lines[-1].strip() in ("```", "~~~"):
        text = "\n".join(lines[1:-1])
    if text.lstrip().startswith("---"):
        try:
            post = frontmatter.loads(text.lstrip())
        except Exception:  # not YAML after all: leave the text as it is
            return text
        if post.metadata:
            text = post.content
    return text


def _code_lines(lines: list[str]) -> set[int]:
    """0-based line numbers inside fenced or indented code blocks."""
    inside: set[int] = set()
    for token in _MD.parse("\n".join(lines)):
        if token.type in ("fence", "code_block") and token.map:
            inside.update(range(token.map[0], token.map[1]))
    return inside


def _expand(group: str) -> list[int]:
    numbers: list[int] = []
    for piece in re.split(r"\s*[,;]\s*", group):
        if re.fullmatch(r"\d+\s*[-–]\s*\d+", piece):
            lo, hi = (int(x) for x in re.split(r"\s*[-–]\s*", piece))
            numbers.extend(range(lo, hi + 1) if 0 < hi - lo < 50 else [lo, hi])
        elif piece.strip().isdigit():
            numbers.append(int(piece))
    return numbers


def _headings(lines: list[str]):
    tokens = _MD.parse("\n".join(lines))
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            yield token, tokens[i + 1].content


@dataclass
class SectionText:
    body: str
    warnings: list[str] = field(default_factory=list)


def clean_section(text: str, label: str) -> SectionText:
    """A reply meant as one section's body: its own heading, anything under a further level-1/2 heading
    (another section, a Sources list) and every URL removed; citation groups written ``[1][2]``.

    ``label`` names the section in warnings. Code blocks and inline code are never touched.
    """
    lines = _unwrap(text).strip("\n").splitlines()
    warnings: list[str] = []
    heads = [(t.map[0], int(t.tag[1]), title) for t, title in _headings(lines)]
    if heads and heads[0][1] <= 2 and not any(line.strip() for line in lines[: heads[0][0]]):
        lines[heads[0][0]] = ""  # the model repeated the section's heading: kb writes it
        heads = heads[1:]
    for start, level, title in heads:
        bare = title.strip().strip("#").strip().lower().rstrip(":")
        if level <= 2 or bare in _SOURCES_HEADINGS:
            dropped = " ".join(line.strip() for line in lines[start:] if line.strip())
            if bare not in _SOURCES_HEADINGS:
                warnings.append(f"{label}: the writer went on past its section (text under \"{title.strip()}\" dropped: "
                                f"{dropped[:80]}{'...' if len(dropped) > 80 else ''})")
            lines = lines[:start]
            break
    code = _code_lines(lines)
    out: list[str] = []
    urls: list[str] = []

    def link(match: re.Match) -> str:
        urls.append(match.group(2))
        return match.group(1)

    def bare(match: re.Match) -> str:
        url = match.group(0)
        tail = url[len(url.rstrip(".,;:!?")):]  # sentence punctuation is not part of the URL
        urls.append(url[: len(url) - len(tail)].strip("<>"))
        return tail

    for i, line in enumerate(lines):
        if i in code:
            out.append(line)
            continue
        pieces = re.split(r"(`+[^`]*`+)", line)
        fixed = []
        for k, piece in enumerate(pieces):
            if k % 2 == 0:
                piece = _LINK.sub(link, piece)
                piece = _BARE_URL.sub(bare, piece)
                piece = _CITE.sub(lambda m: "".join(f"[{n}]" for n in dict.fromkeys(_expand(m.group(1)))), piece)
                piece = re.sub(r"(?<=\S) {2,}(?=\S)", " ", piece)
                piece = re.sub(r"(?<=\S) +(?=[.,;:])", "", piece)
            fixed.append(piece)
        out.append("".join(fixed).rstrip())
    if urls:  # a passage is cited by its number; kb writes the source list
        warnings.append(f"{label}: removed URLs from the text: {', '.join(sorted(set(urls))[:5])}")
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
    return SectionText(body=body + "\n" if body else "", warnings=warnings)
