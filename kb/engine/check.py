"""The check every draft must pass before it becomes a knowledge file, whatever engine wrote it.

Reasons come back as plain sentences: the runner shows them, and an LLM engine
gets them as the feedback for its rewrite. Rules: the body is not empty; every
planned section has its ``## Section N: <title>`` heading and some text; every
citation ``[n]`` names a source of the draft; every Python code fence parses.
"""

from __future__ import annotations

import ast
import re

from kb.engine.types import Draft, WriteRequest
from kb.mdblocks import parse_blocks

PYTHON = {"python", "py", "python3"}


class _Citations:
    """[3], [1, 2], [1][2] in one line: a bracketed number not escaped (\\[1\\]) and not a link ([1](url)). A line
    that is a reference definition ("[1]: https://...", at most 3 spaces in) holds none; "- `X` [1]: what it
    does" and "From the docstring of X [1]:" do cite."""

    _BRACKETS = re.compile(r"(?<!\\)\[(\d+(?:\s*,\s*\d+)*)\](?!\()")
    _DEFINITION = re.compile(r"^ {0,3}\[\d+\]:[ \t]*\S")

    def finditer(self, line: str):
        return iter(()) if self._DEFINITION.match(line) else self._BRACKETS.finditer(line)

    def search(self, line: str):
        return None if self._DEFINITION.match(line) else self._BRACKETS.search(line)


_CITATION = _Citations()
# One line at most: a quoted docstring with an odd backtick must not blank the citations of the lines after it.
_INLINE_CODE = re.compile(r"(`+)[^\n]*?\1")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(":.").casefold()


def _headings(tokens) -> list[tuple[int, str, int]]:
    """(level, text, line index) of every heading."""
    out = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            out.append((int(token.tag[1]), tokens[i + 1].content, token.map[0]))
    return out


def _prose_lines(body: str, tokens) -> list[tuple[int, str]]:
    """Body lines outside fenced and indented code, with inline code spans blanked out."""
    code_lines: set[int] = set()
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            code_lines.update(range(token.map[0], token.map[1]))
    lines = body.splitlines()
    text = "\n".join("" if n in code_lines else line for n, line in enumerate(lines))
    text = _INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    return list(enumerate(text.splitlines(), start=1))


# Public names for readers of finished files (kb report): one set of rules for "present" and "cited".
CITATION = _CITATION
norm_heading = _norm
headings = _headings
prose_lines = _prose_lines


def check_draft(draft: Draft, request: WriteRequest) -> list[str]:
    """Why the draft is not acceptable (an empty list when it is)."""
    body = draft.body or ""
    if not body.strip():
        return ["the body is empty"]
    reasons: list[str] = []
    tokens = parse_blocks(body)
    headings = _headings(tokens)
    level2 = {_norm(text): line for level, text, line in headings if level == 2}
    for section in request.part.sections:
        wanted = f"Section {section.number}: {section.title}"
        line = level2.get(_norm(wanted))
        if line is None:
            reasons.append(f'section {section.number} is missing: add the heading "## {wanted}"')
            continue
        following = [h for h in headings if h[2] > line and h[0] <= 2]
        end = following[0][2] if following else len(body.splitlines())
        content = "\n".join(body.splitlines()[line + 1:end]).strip()
        if not content:
            reasons.append(f'section {section.number} ("{wanted}") has no text')
    ids = {s.id for s in draft.sources}
    bad: dict[int, int] = {}
    for lineno, line in _prose_lines(body, tokens):
        for match in _CITATION.finditer(line):
            for number in re.findall(r"\d+", match.group(1)):
                if int(number) not in ids:
                    bad.setdefault(int(number), lineno)
    for number, lineno in sorted(bad.items()):
        known = ", ".join(f"[{i}]" for i in sorted(ids)) or "none"
        reasons.append(f"citation [{number}] (line {lineno}) names no source (sources: {known})")
    fences = [t for t in tokens if t.type == "fence"]
    for number, token in enumerate(fences, start=1):
        language = (token.info or "").strip().split(maxsplit=1)[0].lower() if (token.info or "").strip() else ""
        if language not in PYTHON:
            continue
        try:
            ast.parse(token.content)
        except SyntaxError as exc:
            where = token.map[0] + 1 if token.map else 0
            reasons.append(f"python code block {number} (line {where}) does not parse: {exc.msg} "
                           f"(its line {exc.lineno})")
        except ValueError as exc:
            reasons.append(f"python code block {number} does not parse: {exc}")
    return reasons


# -- filled, empty, uncited (issue 19) ------------------------------------------------------------
# A section is *filled* when its text cites a source, *empty* when it says in its one line that
# research found nothing (the offline writer's note; an LLM writer is asked for the same words), and
# *uncited* otherwise: text nothing supports, which --strict refuses.
EMPTY_MARK = "Research found nothing"
FILLED, EMPTY, UNCITED = "filled", "empty", "uncited"


def section_state(text: str) -> str:
    """``filled``, ``empty`` or ``uncited``, for one section's text (heading excluded)."""
    tokens = parse_blocks(text)
    prose = [line for _n, line in _prose_lines(text, tokens)]
    if any(_CITATION.search(line) for line in prose):
        return FILLED
    if any(EMPTY_MARK.casefold() in line.casefold() for line in prose):
        return EMPTY
    return UNCITED


def section_texts(body: str, titles: list[tuple[int, str]]) -> dict[str, str]:
    """Planned section title -> its text in ``body`` (heading excluded); a section without its heading is left out."""
    tokens = parse_blocks(body)
    heads = _headings(tokens)
    lines = body.splitlines()
    level2 = {_norm(text): line for level, text, line in heads if level == 2}
    out: dict[str, str] = {}
    for number, title in titles:
        line = level2.get(_norm(f"Section {number}: {title}" if number else title))
        if line is None:
            continue
        following = [h for h in heads if h[2] > line and h[0] <= 2]
        end = following[0][2] if following else len(lines)
        out[title] = "\n".join(lines[line + 1:end])
    return out


def section_states(body: str, titles: list[tuple[int, str]]) -> dict[str, str]:
    """Planned section title -> its state in ``body``; a planned section without its heading is left out."""
    return {title: section_state(text) for title, text in section_texts(body, titles).items()}


def empty_sections(body: str, part) -> list[str]:
    """The PART's planned sections that ``body`` marks empty (research found nothing)."""
    states = section_states(body, [(s.number, s.title) for s in part.sections])
    return [title for title, state in states.items() if state == EMPTY]


# A filled section may hold nothing of its own: every cited line points to the section that quotes the answer, in
# another file (its citations are knowledge files) or above in this one ("... quoted above: `X` [1] (Section 1).").
_IN_FILE_POINTER = re.compile(r"\(Sections? \d+(?:(?:, | and )\d+)*\)")


def points_only(text: str, kinds: dict[int, str]) -> bool:
    """Is a section's text (heading excluded) cited only by lines pointing elsewhere? ``kinds``: source id -> kind."""
    tokens = parse_blocks(text)
    cited = [line for _n, line in _prose_lines(text, tokens) if _CITATION.search(line)]
    return bool(cited) and all(
        _IN_FILE_POINTER.search(line)
        or all(kinds.get(int(n)) == "knowledge" for m in _CITATION.finditer(line) for n in re.findall(r"\d+", m.group(1)))
        for line in cited)


def pointing_sections(body: str, part, kinds: dict[int, str]) -> list[str]:
    """The PART's planned sections that ``body`` fills only with pointers to the section quoting their answer."""
    texts = section_texts(body, [(s.number, s.title) for s in part.sections])
    return [title for title, text in texts.items() if points_only(text, kinds)]


# A section filled with a passage research ranked below its bar and a reviewer accepted (kb.curation) says so in a
# line of its own, so a reader, the drop and kb report tell a reviewer's choice from research's.
CURATED_MARK = "A reviewer"
_CURATED_LINE = re.compile(r"^A reviewer (?:\([^)\n]*\) )?chose ")


def curated_note(passages) -> str:
    """The line a writer puts in a section naming the passages a reviewer chose (Passage.curated_by), or ""."""
    chosen: dict[str, list[str]] = {}
    for passage in passages:
        if passage.curated_by:
            name = f"`{passage.locator}`" if passage.kind == "doc" else passage.title
            why = " ".join((passage.curated_why or "").split()).replace("*", "\\*")
            chosen.setdefault(passage.curated_by, []).append(f"{name} ({why})" if why else name)
    if not chosen:
        return ""
    count = sum(len(names) for names in chosen.values())
    who = "; a reviewer".join(f" ({by}) chose {_and(names)}" for by, names in chosen.items())
    return f"*{CURATED_MARK}{who} for this section; research did not pick {'it' if count == 1 else 'them'}.*"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def curated(text: str) -> bool:
    """Does a section's text (heading excluded) say a reviewer chose its passage?"""
    return any(_CURATED_LINE.match(line.lstrip("*_ ")) for _n, line in _prose_lines(text, parse_blocks(text)))


def curated_sections(body: str, part) -> list[str]:
    """The PART's planned sections that ``body`` fills with a passage a reviewer chose (curation.toml)."""
    texts = section_texts(body, [(s.number, s.title) for s in part.sections])
    return [title for title, text in texts.items() if curated(text) and section_state(text) == FILLED]
