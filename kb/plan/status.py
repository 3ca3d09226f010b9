"""A PART's status line, ``- [✓] PART n: Create <path> (Completed YYYY-MM-DD HH:MM)``: where its
checkbox, number, target and completion stamp are, and how to rewrite it.

The parser and the editor both read status lines here, so a line the parser reads as a
status is one the editor can tick and untick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A PART, BATCH or section number longer than this is no number a plan means (and Python
# refuses to convert more than 4,300 digits): the line gets a problem instead.
MAX_DIGITS = 9
DONE_MARKS = {"x", "X", "✓", "✔", "✅", "☑", "✔️", "✅️", "☑️"}
FAILED_MARKS = {"/"}

COMPLETED = re.compile(
    r"\(\s*Completed\s*:?\s+(?P<ts>\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?)\s*\)", re.I
)
_LINE = re.compile(
    # lead: indentation, blockquote marks, then one or more list markers ("- ", "- * ", "1. ")
    r"^(?P<lead>[ \t]*(?:>[ \t]*)*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)+)"
    r"(?:(?P<box>\[(?P<mark>[^\[\]\r\n]{0,4})\])[ \t]*)?"
    r"(?P<body>\**PART\**[ \t]+(?P<n>\d+)\**[ \t]*:\**[ \t]*(?P<rest>.*?))"
    r"(?P<trail>[ \t]*)(?P<eol>\r\n|\r|\n)?\Z",
    re.I | re.S,
)
_TARGET = re.compile(r"^(?:Create|Write|Update)\s+(?P<target>`[^`]+`|\S+)(?P<tail>.*)$", re.I | re.S)


@dataclass
class StatusLine:
    """What a status line says; spans index into the line it was read from."""

    digits: str  # the PART number as written (see number)
    mark: str | None  # the checkbox's content, stripped; None: the line has no checkbox
    target: str | None  # as written, backticks stripped; None: the line names no file
    text: str  # everything after "PART n:", completion stamp removed
    completed_at: str | None  # "YYYY-MM-DD HH:MM" or "YYYY-MM-DD"

    @property
    def number(self) -> int | None:
        """The PART number, or None where it has more than MAX_DIGITS digits."""
        return int(self.digits) if len(self.digits.lstrip("0")) <= MAX_DIGITS else None

    @property
    def status(self) -> str:
        if self.mark in DONE_MARKS:
            return "done"
        if self.mark in FAILED_MARKS:
            return "failed"
        return "pending"

    @property
    def known_mark(self) -> bool:
        return self.mark is None or self.mark == "" or self.mark in DONE_MARKS or self.mark in FAILED_MARKS


def _timestamp(ts: str) -> str:
    ts = ts.replace("T", " ")
    if len(ts) > 10:
        day, clock = ts[:10], ts[11:]
        hour, minute = clock.split(":")[:2]
        return f"{day} {int(hour):02d}:{minute}"
    return ts


def read_status_line(line: str) -> StatusLine | None:
    """The status line ``line`` is (a source line, its ending included or not), or None."""
    match = _LINE.match(line)
    if match is None:
        return None
    rest = match.group("rest")
    completed = COMPLETED.search(rest)
    plain = (rest[: completed.start()] + rest[completed.end():]) if completed else rest
    plain = re.sub(r"\s{2,}", " ", plain).strip()
    target = None
    found = _TARGET.match(plain)
    if found:
        target = found.group("target").strip()
        if len(target) >= 2 and target[0] == target[-1] == "`":
            target = target[1:-1].strip()
    mark = match.group("mark")
    return StatusLine(
        digits=match.group("n"),
        mark=None if match.group("box") is None else mark.strip(),
        target=target or None,
        text=plain,
        completed_at=_timestamp(completed.group("ts")) if completed else None,
    )


def rewrite_status_line(line: str, mark: str, completed_at: str | None) -> str | None:
    """``line`` with checkbox ``[mark]`` and, where given, a ``(Completed ...)`` stamp at its end (any
    earlier stamp removed); everything else, trailing whitespace and line ending included, kept.
    None where ``line`` is no status line."""
    match = _LINE.match(line)
    if match is None:
        return None
    rest = match.group("rest")
    completed = COMPLETED.search(rest)
    if completed:
        before, after = rest[: completed.start()], rest[completed.end():]
        # "(Completed ...) Create x" loses the stamp and the space after it; "x (Completed ...) note",
        # the space before it.
        rest = before + after.lstrip() if not before.strip() else before.rstrip() + after
    stamp = f" (Completed {completed_at})" if completed_at else ""
    body = line[match.start("body"): match.start("rest")] + rest
    return (
        f"{match.group('lead')}[{mark}] {body}{stamp}{match.group('trail')}{match.group('eol') or ''}"
    )
