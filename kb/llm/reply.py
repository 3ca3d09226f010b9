"""Turning an LLM reply into a knowledge-file body kb can stand behind.

Honest citations: ``[n]`` may only name a source research retrieved and passed
to the writer; any other number is removed. A URL that is not one of those
sources is removed (a link keeps its text); one that is becomes ``[n]``. The
model's own Sources/References section is dropped and kb writes the list from
what the body cites. Code blocks and inline code are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import frontmatter
from markdown_it import MarkdownIt

from kb.records import SourceRef

_MD = MarkdownIt("commonmark")
_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+|\s*[-–]\s*\d+)*)\](?![(:])")
_LINK = re.compile(r"\[([^\]\n]*)\]\((https?://[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BARE_URL = re.compile(r"<?https?://[^\s<>()\]]+>?")
_SOURCES_HEADINGS = {"sources", "references", "bibliography", "citations", "works cited", "source documents", "web research"}


def normalize_url(url: str) -> str:
    """A URL compared loosely: no fragment, no trailing slash, lower-case scheme and host."""
    url = url.strip("<>").rstrip(".,;:")
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


@dataclass
class Cleaned:
    title: str | None
    body: str  # without a Sources section
    cited: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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


def clean_reply(text: str, sources: list[SourceRef]) -> Cleaned:
    """Unwrap the reply, drop its Sources section, and keep only citations of ``sources``."""
    valid = {s.id for s in sources}
    by_url = {normalize_url(s.locator): s.id for s in sources if s.kind == "web" or s.locator.startswith("http")}
    warnings: list[str] = []
    invented_ids: set[int] = set()
    invented_urls: set[str] = set()
    cited: list[int] = []

    lines = _unwrap(text).strip("\n").splitlines()
    # Drop the model's own source list: kb writes it from what the body cites.
    headings = [(t.map[0], int(t.tag[1]), tokens_inline) for t, tokens_inline in _headings(lines)]
    drop: set[int] = set()
    for index, (start, level, title) in enumerate(headings):
        if title.strip().strip("#").strip().lower().rstrip(":") in _SOURCES_HEADINGS and level <= 2:
            end = next((s for s, lv, _ in headings[index + 1:] if lv <= level), len(lines))
            drop.update(range(start, end))
    lines = [line for i, line in enumerate(lines) if i not in drop]

    code = _code_lines(lines)
    title: str | None = None
    out: list[str] = []

    def fix_prose(segment: str) -> str:
        def link(match: re.Match) -> str:
            label, url = match.group(1), match.group(2)
            sid = by_url.get(normalize_url(url))
            if sid is None:
                invented_urls.add(url)
                return label
            cited.append(sid)
            return f"{label} [{sid}]"

        def bare(match: re.Match) -> str:
            url = match.group(0)
            tail = url[len(url.rstrip(".,;:!?")):]  # sentence punctuation is not part of the URL
            url = url[: len(url) - len(tail)]
            sid = by_url.get(normalize_url(url))
            if sid is None:
                invented_urls.add(url.strip("<>"))
                return tail
            cited.append(sid)
            return f"[{sid}]{tail}"

        def cite(match: re.Match) -> str:
            numbers = _expand(match.group(1))
            kept = [n for n in numbers if n in valid]
            invented_ids.update(n for n in numbers if n not in valid)
            cited.extend(kept)
            return "".join(f"[{n}]" for n in dict.fromkeys(kept))

        before = segment
        segment = _LINK.sub(link, segment)
        segment = _BARE_URL.sub(bare, segment)
        segment = _CITE.sub(cite, segment)
        if segment != before:
            # Close the gaps a removal leaves ("see  and  for" -> "see and for").
            segment = re.sub(r"(?<=\S) {2,}(?=\S)", " ", segment)
            segment = re.sub(r"(?<=\S) +(?=[.,;:])", "", segment)
        return segment

    for i, line in enumerate(lines):
        if i in code:
            out.append(line)
            continue
        if title is None and line.startswith("# "):
            title = line[2:].strip().strip("#").strip()
        # Backtick-delimited inline code stays as written (odd pieces of the split).
        pieces = re.split(r"(`+[^`]*`+)", line)
        out.append("".join(p if k % 2 else fix_prose(p) for k, p in enumerate(pieces)).rstrip())

    if invented_ids:
        warnings.append(f"removed citations of sources research did not retrieve: {', '.join(f'[{n}]' for n in sorted(invented_ids))}")
    if invented_urls:
        warnings.append(f"removed URLs that are not retrieved sources: {', '.join(sorted(invented_urls)[:5])}")
    body = "\n".join(out).strip() + "\n"
    body = re.sub(r"\n{3,}", "\n\n", body)
    return Cleaned(title=title, body=body, cited=sorted(set(cited)), warnings=warnings)


def _headings(lines: list[str]):
    tokens = _MD.parse("\n".join(lines))
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            yield token, tokens[i + 1].content


def sources_section(sources: list[SourceRef], cited: list[int]) -> str:
    """The ``## Sources`` list of what the body cites, in the shape older readers know."""
    used = [s for s in sources if s.id in set(cited)]
    web = [s for s in used if s.kind == "web"]
    docs = [s for s in used if s.kind != "web"]
    lines = ["## Sources", ""]
    if docs:
        lines += ["### Source Documents", ""]
        lines += [f"- [{s.id}] {s.title} (`{s.locator}`)" for s in docs]
        lines.append("")
    if web:
        lines += ["### Web Research", ""]
        for s in web:
            accessed = f" (accessed {s.accessed})" if s.accessed else ""
            lines.append(f"- [{s.id}] [{s.title}]({s.locator}){accessed}")
        lines.append("")
    if not used:
        lines += ["No sources were cited.", ""]
    return "\n".join(lines)


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
        urls.append(match.group(0).strip("<>"))
        return ""

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
