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
from kb.plan.encoding import REPLACEMENT, decode_plan_bytes
from kb.plan.model import Batch, Part, Plan, Problem, Read, Section
from kb.plan.status import MAX_DIGITS, StatusLine, read_status_line

# "[ ]", "[x]", "[X]", "[✓]", "[✔]", "[✅]" and "[/]" (failed or partial); see kb.plan.status.
CHECKBOX = re.compile(r"^\[(?P<mark>[^\[\]\r\n]{0,4})\]\s*(?P<rest>.*)$", re.S)

TITLE = re.compile(r"^Knowledge Expansion\s*[:\-–—]\s*(?P<topic>.+?)(?:\s*\((?P<info>[^()]*)\))?\s*$", re.I)
# "BATCH 2", "BATCH 2a" (a batch added between 2 and 3 keeps its label; see Batch.label)
BATCH = re.compile(r"^\W*BATCH\s+(?P<n>\d+)(?P<suffix>[A-Za-z]?)\s*(?:[:.\-–—]\s*(?P<name>.*))?$", re.I)
PART_HEADING = re.compile(r"^\W*PART\s+(?P<n>\d+)\s*(?:[:.\-–—]\s*(?P<title>.*))?$", re.I)
# An item that reads as a PART's status line ("PART n: ..." after an optional checkbox).
PART_STATUS = re.compile(r"^\**PART\**\s+\d+\**\s*:", re.I)
READ = re.compile(r"^Read\s+(?P<path>`[^`]+`|\S+)\s*(?:\((?P<note>.*)\))?\s*$", re.I)
SEARCH = re.compile(r"^Search\s*:\s*(?P<q>.+?)\s*$", re.I)
SECTION = re.compile(r"^(?:(?:Write|Create|Add|Draft)\s+)?Section\s+(?P<n>\d+)\s*[:.\-–—]\s*(?P<body>.+?)\s*$", re.I)
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
        text, repairs = decoded.text, list(decoded.repairs)
    else:
        text, repairs = raw, []
    if "\r\n" in text:
        repairs.append("read CRLF line endings (kept as they are when the plan is edited)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _PlanBuilder(path, text, repairs).build()


def _table_cells(row: str) -> list[str]:
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|"):
        row = row[:-1]
    return [cell.strip().strip("*_` ").strip() for cell in row.split("|")]


_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_TABLE_BATCH = re.compile(r"^(?:BATCH\s*)?(?P<n>\d+)(?P<suffix>[A-Za-z]?)\b", re.I)
_TABLE_PARTS = re.compile(r"(?P<a>\d+)(?:\s*(?:-|–|—|to|\.\.)\s*(?:PART\s*)?(?P<b>\d+))?", re.I)
_NAME_HEADERS = re.compile(r"name|focus|theme|topic|title|description|content|subject", re.I)


class _PlanBuilder:
    def __init__(self, path: str, text: str, repairs: list[str]):
        self.plan = Plan(path=path, title=None, topic=None, repairs=repairs)
        self.text = text
        self.lines = text.split("\n")
        self.batch: Batch | None = None
        self.part: Part | None = None
        self.step: str | None = None
        self.in_preamble = True
        self.parts: list[Part] = []  # every PART in order of appearance, duplicates included
        self.first: dict[int, Part] = {}  # PART number -> its first Part
        self.home: dict[int, Batch | None] = {}  # id(part) -> the BATCH it was found in
        self.headed: set[int] = set()  # ids of parts that have a "## PART n" heading
        self.suffixed: list[Batch] = []  # "BATCH 2a": numbered once every plain number is known
        self.table: dict[int, tuple[str, str, int]] = {}  # PART number -> (batch label, name, row line) from an overview table

    # -- helpers -------------------------------------------------------
    def problem(self, line: int, message: str) -> None:
        self.plan.problems.append(Problem(line=line, message=message))

    def number(self, digits: str, line: int, what: str) -> int | None:
        """``digits`` as an int, or None (with a problem) where no plan means a number that long."""
        if len(digits.lstrip("0")) > MAX_DIGITS:
            self.problem(line, f"a {what} number of {len(digits)} digits; kb reads numbers of up to "
                               f"{MAX_DIGITS} digits, so this line is ignored")
            return None
        return int(digits)

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
            number = self.number(batch.group("n"), line, "BATCH")
            if number is None:
                return
            name = batch.group("name") or ""
            name, _ = _split_trailing_parens(name)
            suffix = batch.group("suffix") or ""
            self.batch = Batch(number=number, name=name, line=line, label=f"{number}{suffix.lower()}")
            if suffix:
                self.suffixed.append(self.batch)
            self.plan.batches.append(self.batch)
            self.part = None
            self.step = None
            return
        part = PART_HEADING.match(text)
        if part:
            number = self.number(part.group("n"), line, "PART")
            if number is None:
                self.part = None
                return
            title = part.group("title") or ""
            planned = PLANNED_LINES.search(title)
            planned_lines = None
            if planned:
                digits = planned.group("n").replace(",", "")
                planned_lines = int(digits) if len(digits) <= MAX_DIGITS else None
                title = title[: planned.start()]
            self.on_part_heading(number, title.strip(), line, planned_lines)
            return
        if self.part is not None and level <= 2:
            # Any other heading at PART level or above closes the PART: what follows is prose.
            self.part = None
            self.step = None

    def on_part_heading(self, number: int, title: str, line: int, planned_lines: int | None) -> None:
        earlier = self.first.get(number)
        if earlier is not None and id(earlier) not in self.headed:
            # The PART was met first in a checklist (an overview before the PART sections): this heading is its home.
            earlier.title = title or earlier.title
            earlier.line = line
            earlier.planned_lines = planned_lines
            if self.home.get(id(earlier)) is None:
                self.home[id(earlier)] = self.batch
            self.headed.add(id(earlier))
            self.part, self.step = earlier, None
            return
        self.start_part(number, title, line, planned_lines)
        self.headed.add(id(self.part))

    def start_part(self, number: int, title: str, line: int, planned_lines: int | None = None) -> Part:
        part = Part(number=number, title=title, line=line, planned_lines=planned_lines)
        self.parts.append(part)
        self.first.setdefault(number, part)
        self.home[id(part)] = self.batch
        self.part = part
        self.step = None
        return part

    def on_paragraph(self, content: str, line: int) -> None:
        first = content.strip().split("\n", 1)[0].strip()
        if first.startswith("|"):
            self.on_table(content, line)
            return
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

    def on_table(self, content: str, line: int) -> None:
        """A batch overview table (a column of batches, a column of PART numbers) says which
        batch each PART belongs to, for plans whose PART sections sit under no BATCH heading."""
        rows = content.split("\n")
        if len(rows) < 3 or not _TABLE_RULE.match(rows[1].strip()):
            return
        header = [cell.lower() for cell in _table_cells(rows[0])]
        batch_col = next((i for i, h in enumerate(header) if "batch" in h), None)
        part_col = next((i for i, h in enumerate(header) if "part" in h and i != batch_col), None)
        if batch_col is None or part_col is None:
            return
        name_col = next((i for i, h in enumerate(header) if _NAME_HEADERS.search(h) and i not in (batch_col, part_col)),
                        None)
        for offset, row in enumerate(rows[2:], 2):
            cells = _table_cells(row)
            if len(cells) <= max(batch_col, part_col):
                continue
            batch = _TABLE_BATCH.match(cells[batch_col])
            if not batch or len(batch.group("n")) > MAX_DIGITS:
                continue
            label = f"{int(batch.group('n'))}{batch.group('suffix').lower()}"
            name = cells[name_col] if name_col is not None and name_col < len(cells) else ""
            for match in _TABLE_PARTS.finditer(cells[part_col]):
                a, b = match.group("a"), match.group("b") or match.group("a")
                if len(a) > MAX_DIGITS or len(b) > MAX_DIGITS or int(b) - int(a) > 10_000:
                    continue
                for number in range(int(a), int(b) + 1):
                    self.table.setdefault(number, (label, name, line + offset))

    def on_item(self, content: str, line: int) -> None:
        text = content.strip().split("\n", 1)[0].strip()
        box = CHECKBOX.match(text)
        if box:
            text = box.group("rest").strip()
        if PART_STATUS.match(text):
            self.on_status_item(text, line)
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
            number = self.number(match.group("n"), line, "section")
            if number is not None:
                title, details = _split_trailing_parens(match.group("body"))
                self.part.sections.append(Section(number, title, details, line))
        elif match := CITE.match(text):
            refs = match.group("refs") if match.group("refs") is not None else match.group("refs2")
            self.part.cite.extend(r.strip() for r in refs.split(";") if r.strip())
        elif match := DROP.match(text):
            self.part.drop = _strip_ticks(match.group("name"))

    def on_status_item(self, text: str, line: int) -> None:
        # What the status says is read from its source line, as the editor reads it (kb.plan.status):
        # a status line kb reads is one kb can tick.
        status = read_status_line(self.lines[line - 1]) if 0 < line <= len(self.lines) else None
        if status is None:
            self.problem(line, f"{text[:60]!r} reads as a PART status line, but not in a form kb can edit "
                               "('- [ ] PART n: Create <path>' on one line); ignored")
            return
        if status.mark is None and status.target is None:
            return  # "- PART 3: Caching" with neither checkbox nor file: a mention, not a status
        number = self.number(status.digits, line, "PART")
        if number is None:
            return
        part = self.part
        if part is None or part.number != number:
            earlier = self.first.get(number)
            if earlier is not None and _same_target(earlier.target, status.target):
                part = earlier  # the PART listed twice (its section and a checklist): one PART
            else:
                if part is not None and part.status_line is None:
                    self.problem(line, f"status line says PART {number} but it sits under the PART {part.number} heading")
                part = self.start_part(number, "", line)
        elif part.status_line is not None and not _same_target(part.target, status.target):
            part = self.start_part(number, "", line)
        self.apply_status(part, status, line)

    def apply_status(self, part: Part, status: StatusLine, line: int) -> None:
        first = part.status_line is None
        part.status_lines.append(line)
        if first:
            part.status_line = line
            part.status = status.status
            part.completed_at = status.completed_at
        elif status.status == "done" and part.status != "done":
            # A PART listed twice keeps the ticked copy: ticks are what runs and people add.
            part.status = "done"
            part.completed_at = status.completed_at or part.completed_at
        elif part.completed_at is None and status.status == part.status:
            part.completed_at = status.completed_at
        if part.target is None and status.target:
            part.target = status.target
        if not part.title:
            part.title = Path(status.target).stem if status.target else status.text
        if status.mark is None:
            self.problem(line, f"PART {part.number} status line has no checkbox; read as pending")
        elif not status.known_mark:
            hint = ("; the plan looks saved in a wrong encoding (mojibake): retype the mark"
                    if not status.mark.isascii() else "")
            self.problem(line, f"PART {part.number}: kb does not know the checkbox mark [{status.mark}]; "
                               f"read as pending{hint}")

    # -- whole-plan checks ---------------------------------------------
    def place_in_batches(self) -> None:
        plan = self.plan
        used = {b.number for b in plan.batches if b not in self.suffixed}
        for label, _, _ in self.table.values():
            if label.isdigit():
                used.add(int(label))
        spare = (max(used) if used else 0) + 1
        numbers: dict[str, int] = {}
        for batch in self.suffixed:
            # "2a" needs an int number of its own (--batch N): the first one after every plain number.
            batch.number = numbers.setdefault(batch.label, spare + len(numbers))
        by_label = {b.label: b for b in plan.batches}
        for batch in plan.batches:
            batch.parts = []
        orphans: Batch | None = None
        for part in self.parts:
            batch = self.home.get(id(part))
            if batch is None and part.number in self.table:
                label, name, row = self.table[part.number]
                batch = by_label.get(label)
                if batch is None:
                    number = int(label) if label.isdigit() else numbers.setdefault(label, spare + len(numbers))
                    batch = by_label[label] = Batch(number=number, name=name, line=row, label=label)
                    plan.batches.append(batch)
            if batch is None:
                if orphans is None:
                    orphans = Batch(number=0, name="(no batch)", line=part.line, label="0")
                orphans.parts.append(part)
                part.batch = None
                self.problem(part.line, f"PART {part.number} is not inside any BATCH")
                continue
            batch.parts.append(part)
            part.batch = batch.number
        if orphans is not None:
            plan.batches.insert(0, orphans)

    def finish(self) -> None:
        plan = self.plan
        self.place_in_batches()
        if plan.title is None and not plan.batches:
            raise PlanError(f"{plan.path}: not an expansion plan (no title, no BATCH or PART headings)")
        lost = [i for i, line in enumerate(self.lines, 1) if REPLACEMENT in line]
        if lost:
            where = f"{len(lost)} lines (the first here) hold" if len(lost) > 1 else "this line holds"
            self.problem(lost[0], f"{where} U+FFFD replacement characters: a tool decoded the plan with the wrong encoding and "
                                  "saved it, losing those characters; kb cannot repair them, retype them "
                                  "(checkbox marks first)")
        if not plan.parts:
            self.problem(1, "no PARTs found (no '## PART n: <title>' heading and no '- [ ] PART n: Create <path>' line)")
        for batch in plan.batches:
            if not batch.parts:
                self.problem(batch.line, f"BATCH {batch.label} has no parts")
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
            if normalised.startswith(KNOWLEDGE_PREFIX) and normalised != KNOWLEDGE_PREFIX:
                # Targets are relative to knowledge/ already: "knowledge/io/x.md" means io/x.md.
                plan.repairs.append(f"line {part.status_line or part.line}: PART {part.number}'s target "
                                    f"{part.target} names the knowledge/ folder itself; read as "
                                    f"{normalised[len(KNOWLEDGE_PREFIX):]}")
                normalised = normalised[len(KNOWLEDGE_PREFIX):]
                part.target = normalised
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


KNOWLEDGE_PREFIX = "knowledge/"


def _same_target(a: str | None, b: str | None) -> bool:
    """Two status lines of one PART: the same file, or one of them names none."""
    if a is None or b is None:
        return True
    return a.strip("`").removeprefix("./") == b.strip("`").removeprefix("./")
