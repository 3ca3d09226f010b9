"""Parse an expansion plan with markdown-it-py into a :class:`Plan`.

The block structure (headings, list items, paragraphs and their source lines)
comes from markdown-it-py; small per-line patterns then read what each block
says. Problems that cannot be repaired become ``Plan.problems`` entries with a
line and a reason; only a file that is not a plan at all raises ``PlanError``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from kb.errors import PathError, PlanError
from kb.fsutil import relative_inside
from kb.mdblocks import block_parser
from kb.plan.encoding import decode_plan_bytes
from kb.plan.model import Batch, Part, Plan, Problem, Read, Section

# "[ ]", "[x]", "[X]", "[✓]", "[✔]", "[✅]" and "[/]" (failed or partial).
CHECKBOX = re.compile(r"^\[(?P<mark>[ xX✓✔✅/]?|\s*)\]\s*(?P<rest>.*)$", re.S)
DONE_MARKS = {"x", "X", "✓", "✔", "✅"}

TITLE = re.compile(r"^Knowledge Expansion\s*[:\-–—]\s*(?P<topic>.+?)(?:\s*\((?P<info>[^()]*)\))?\s*$", re.I)
BATCH = re.compile(r"^\W*BATCH\s+(?P<n>\d+)\s*(?:[:.\-–—]\s*(?P<name>.*))?$", re.I)
PART_HEADING = re.compile(r"^\W*PART\s+(?P<n>\d+)\s*(?:[:.\-–—]\s*(?P<title>.*))?$", re.I)
PART_STATUS = re.compile(
    r"^PART\s+(?P<n>\d+)\s*:\s*(?:Create|Write|Update)\s+(?P<target>`[^`]+`|\S+)"
    r"(?P<tail>.*?)$",
    re.I,
)
COMPLETED = re.compile(r"\(\s*Completed\s+(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2})(?::\d{2})?\s*\)", re.I)
READ = re.compile(r"^Read\s+(?P<path>`[^`]+`|\S+)\s*(?:\((?P<note>.*)\))?\s*$", re.I)
SEARCH = re.compile(r"^Search\s*:\s*(?P<q>.+?)\s*$", re.I)
SECTION = re.compile(r"^Section\s+(?P<n>\d+)\s*[:.\-–—]\s*(?P<body>.+?)\s*$", re.I)
CITE = re.compile(r"^\*\*CITE\*\*\s*:?\s*(?P<refs>.*)$|^CITE\s*:\s*(?P<refs2>.*)$", re.I)
DROP = re.compile(r"^Create\s+(?P<name>`?KNOWLEDGE-DROP-\S+?`?)\s*$", re.I)
INFLUENCED = re.compile(r"^\*\*Influenced by\*\*\s*:?\s*(?P<text>.*)$", re.I)
METADATA = re.compile(r"^\*\*(?P<key>[^*:]+?)\*\*\s*:\s*(?P<value>.*)$")
PLANNED_LINES = re.compile(r"\s*\(\s*~?\s*(?P<n>[\d,]+)\s*lines?\s*\)\s*$", re.I)
TRAILING_PARENS = re.compile(r"\s*\((?P<inner>[^()]*(?:\([^()]*\)[^()]*)*)\)\s*$")
DROP_SLUG = re.compile(r"^KNOWLEDGE-DROP-(?P<slug>.+?)(?:-\d{4}-\d{2}-\d{2})?(?:-\[?TIME\]?|-\d{4})?\.md$", re.I)


def _strip_ticks(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "`":
        return value[1:-1].strip()
    return value


def _split_trailing_parens(text: str) -> tuple[str, str]:
    match = TRAILING_PARENS.search(text)
    if not match or match.start() == 0:
        return text.strip(), ""
    return text[: match.start()].strip(), match.group("inner").strip()


def drop_slug(part: Part) -> str:
    """The drop slug the plan names for a PART, or one made from its target's file name."""
    if part.drop:
        match = DROP_SLUG.match(part.drop)
        if match:
            return match.group("slug")
    stem = Path(part.target or f"part-{part.number}").stem
    return re.sub(r"^\d+-", "", stem) or f"part-{part.number}"


def load_plan(path: Path, display: str | None = None) -> Plan:
    """Read and parse a plan file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanError(f"{display or path}: no such plan file") from None
    except IsADirectoryError:
        raise PlanError(f"{display or path}: is a folder, not a plan file") from None
    return parse_plan(raw, display or str(path))


def parse_plan(raw: bytes | str, path: str = "<plan>") -> Plan:
    """Parse plan bytes (or already-decoded text) into a Plan with problems and repairs."""
    if isinstance(raw, bytes):
        decoded = decode_plan_bytes(raw)
        text, repairs = decoded.text, decoded.repairs
    else:
        text, repairs = raw, []
    if "\r\n" in text:
        repairs.append("read CRLF line endings (kept as they are when the plan is edited)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _PlanBuilder(path, text, repairs).build()


class _PlanBuilder:
    def __init__(self, path: str, text: str, repairs: list[str]):
        self.plan = Plan(path=path, title=None, topic=None, repairs=repairs)
        self.text = text
        self.lines = text.split("\n")
        self.batch: Batch | None = None
        self.part: Part | None = None
        self.step: str | None = None
        self.in_preamble = True
        self.orphans: Batch | None = None

    # -- helpers -------------------------------------------------------
    def problem(self, line: int, message: str) -> None:
        self.plan.problems.append(Problem(line=line, message=message))

    def build(self) -> Plan:
        tokens = block_parser().parse(self.text)
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.type == "heading_open":
                inline = tokens[index + 1]
                self.on_heading(int(token.tag[1]), inline.content.strip(), token.map[0] + 1)
                index += 3
                continue
            if token.type == "list_item_open":
                inline = self._first_inline(tokens, index)
                if inline is not None:
                    self.on_item(inline.content, inline.map[0] + 1 if inline.map else token.map[0] + 1)
            elif token.type == "paragraph_open" and not self._inside_list(tokens, index):
                inline = tokens[index + 1]
                self.on_paragraph(inline.content, token.map[0] + 1)
            index += 1
        self.finish()
        return self.plan

    @staticmethod
    def _first_inline(tokens, index):
        depth = 0
        for position in range(index + 1, len(tokens)):  # not tokens[index + 1:]: a copy per item is quadratic
            token = tokens[position]
            if token.type == "list_item_close" and depth == 0:
                return None
            if token.type in ("bullet_list_open", "ordered_list_open"):
                depth += 1
            if token.type in ("bullet_list_close", "ordered_list_close"):
                depth -= 1
            if token.type == "inline" and depth == 0:
                return token
        return None

    @staticmethod
    def _inside_list(tokens, index) -> bool:
        return tokens[index].level > 0 and any(
            t.type == "list_item_open" and t.level < tokens[index].level for t in tokens[max(0, index - 8) : index]
        )

    # -- block handlers -----------------------------------------------
    def on_heading(self, level: int, text: str, line: int) -> None:
        if self.plan.title is None and level == 1 and not BATCH.match(text):
            self.plan.title = text
            match = TITLE.match(text)
            self.plan.topic = match.group("topic").strip() if match else text
            return
        self.in_preamble = False
        batch = BATCH.match(text)
        if batch:
            name = batch.group("name") or ""
            name, _ = _split_trailing_parens(name)
            self.batch = Batch(number=int(batch.group("n")), name=name, line=line)
            self.plan.batches.append(self.batch)
            self.part = None
            self.step = None
            return
        part = PART_HEADING.match(text)
        if part:
            title = part.group("title") or ""
            planned = PLANNED_LINES.search(title)
            planned_lines = None
            if planned:
                planned_lines = int(planned.group("n").replace(",", ""))
                title = title[: planned.start()]
            self.start_part(int(part.group("n")), title.strip(), line, planned_lines)
            return
        if self.part is not None and level <= 2:
            # Any other heading at PART level or above closes the PART: what follows is prose.
            self.part = None
            self.step = None

    def start_part(self, number: int, title: str, line: int, planned_lines: int | None = None) -> Part:
        part = Part(number=number, title=title, line=line, planned_lines=planned_lines)
        if self.batch is None:
            if self.orphans is None:
                self.orphans = Batch(number=0, name="(no batch)", line=line)
            self.orphans.parts.append(part)
            part.batch = None
            self.problem(line, f"PART {number} is not inside any BATCH")
        else:
            part.batch = self.batch.number
            self.batch.parts.append(part)
        self.part = part
        self.step = None
        return part

    def on_paragraph(self, content: str, line: int) -> None:
        first = content.strip().split("\n", 1)[0].strip()
        if self.in_preamble and self.plan.title is not None:
            for offset, row in enumerate(content.split("\n")):
                meta = METADATA.match(row.strip())
                if meta:
                    self.plan.metadata[meta.group("key").strip()] = meta.group("value").strip()
            return
        if self.part is None:
            return
        influenced = INFLUENCED.match(first)
        if influenced:
            self.part.influenced_by = influenced.group("text").strip()
            return
        step = re.match(r"^\*\*Step\s+(\d+)", first, re.I)
        if step:
            self.step = step.group(1)

    def on_item(self, content: str, line: int) -> None:
        text = content.strip().split("\n", 1)[0].strip()
        box = CHECKBOX.match(text)
        mark = None
        if box:
            mark = box.group("mark").strip()
            text = box.group("rest").strip()
        status = PART_STATUS.match(text)
        if status:
            self.on_status(int(status.group("n")), status, mark, line)
            return
        if self.part is None:
            return
        if match := READ.match(text):
            self.part.reads.append(Read(_strip_ticks(match.group("path")), (match.group("note") or "").strip(), line))
        elif match := SEARCH.match(text):
            query = match.group("q").strip()
            if len(query) >= 2 and query[0] in "\"“'" and query[-1] in "\"”'":
                query = query[1:-1].strip()
            self.part.searches.append(query)
        elif match := SECTION.match(text):
            title, details = _split_trailing_parens(match.group("body"))
            self.part.sections.append(Section(int(match.group("n")), title, details, line))
        elif match := CITE.match(text):
            refs = match.group("refs") if match.group("refs") is not None else match.group("refs2")
            self.part.cite.extend(r.strip() for r in refs.split(";") if r.strip())
        elif match := DROP.match(text):
            self.part.drop = _strip_ticks(match.group("name"))

    def on_status(self, number: int, match: re.Match, mark: str | None, line: int) -> None:
        part = self.part
        if part is None or part.status_line is not None or part.number != number:
            if part is not None and part.number != number and part.status_line is None:
                self.problem(line, f"status line says PART {number} but it sits under the PART {part.number} heading")
            part = self.start_part(number, "", line)
        part.status_line = line
        part.target = _strip_ticks(match.group("target"))
        if not part.title:
            part.title = Path(part.target).stem
        completed = COMPLETED.search(match.group("tail"))
        if mark in DONE_MARKS:
            part.status = "done"
        elif mark == "/":
            part.status = "failed"
        else:
            part.status = "pending"
        if completed:
            part.completed_at = completed.group("ts").replace("T", " ")
            if len(part.completed_at) == 15:  # single-digit hour
                part.completed_at = part.completed_at[:11] + "0" + part.completed_at[11:]
        if mark is None:
            self.problem(line, f"PART {number} status line has no checkbox; read as pending")

    # -- whole-plan checks ---------------------------------------------
    def finish(self) -> None:
        plan = self.plan
        if self.orphans is not None:
            plan.batches.insert(0, self.orphans)
        if plan.title is None and not plan.batches:
            raise PlanError(f"{plan.path}: not an expansion plan (no title, no BATCH or PART headings)")
        for batch in plan.batches:
            if not batch.parts:
                self.problem(batch.line, f"BATCH {batch.number} has no parts")
        seen_numbers: Counter[int] = Counter(p.number for p in plan.parts)
        for number, count in seen_numbers.items():
            if count > 1:
                lines = [p.line for p in plan.parts if p.number == number]
                self.problem(lines[1], f"PART {number} appears {count} times (lines {', '.join(map(str, lines))})")
        targets: dict[str, Part] = {}
        for part in plan.parts:
            if part.target is None:
                self.problem(part.line, f"PART {part.number} has no target (no '- [ ] PART {part.number}: Create <path>' line)")
                continue
            try:
                normalised = str(relative_inside(part.target, "target"))
            except PathError as exc:
                self.problem(part.status_line or part.line, f"PART {part.number}: {exc}; it must stay inside knowledge/")
                continue
            if not normalised.endswith(".md"):
                self.problem(part.status_line or part.line, f"PART {part.number}: target {part.target!r} is not a .md file")
            first = targets.get(normalised)
            if first is not None:
                self.problem(
                    part.status_line or part.line,
                    f"PART {part.number} writes {normalised}, which PART {first.number} (line {first.line}) already writes",
                )
            else:
                targets[normalised] = part
            if part.status == "done" and part.completed_at is None:
                self.problem(part.status_line or part.line, f"PART {part.number} is ticked but has no completion time")
        plan.problems.sort(key=lambda p: p.line)
