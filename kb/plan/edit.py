"""Change a plan's PART status lines and nothing else.

Every other byte, line endings included, stays as it was. A plan that needed a
mojibake repair is written back repaired (the caller is told). Writes are
atomic, and a per-file lock serialises concurrent ticks from parallel runners.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kb.errors import PlanError
from kb.fsutil import atomic_write_bytes
from kb.plan.encoding import decode_plan_bytes
from kb.plan.parser import COMPLETED, parse_plan

_STATUS_LINE = re.compile(
    r"^(?P<lead>\s*(?:[-*+]|\d+[.)])\s+)(?:\[[^\]]{0,2}\]\s*)?(?P<body>PART\s+(?P<n>\d+)\s*:\s*\S+\s+(?:`[^`]+`|\S+))(?P<tail>.*?)(?P<eol>\r?\n|\r)?$",
    re.I | re.S,
)
# Only \r\n, \n and \r end a line here: str.splitlines() also splits on form
# feeds and U+2028, which would shift line numbers against the parser's.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass
class EditResult:
    changed_parts: list[int]
    repairs_written: list[str]


def _file_lock(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), threading.Lock())


def _rewrite_status(line: str, mark: str, completed_at: str | None) -> str:
    match = _STATUS_LINE.match(line)
    if match is None:
        raise PlanError(f"cannot find the checkbox of status line {line.strip()!r}")
    tail = re.sub(r"\s*" + COMPLETED.pattern, "", match.group("tail"), flags=re.I).rstrip()
    stamp = f" (Completed {completed_at})" if completed_at else ""
    return f"{match.group('lead')}[{mark}] {match.group('body')}{stamp}{tail}{match.group('eol') or ''}"


def _hinted_indexes(lines: list[str], numbers, hints: dict[int, int] | None) -> dict[int, int] | None:
    """0-based line indexes from a caller's status-line hints, or None unless every hinted line still is
    the status line of its PART (then the plan need not be parsed again)."""
    if not hints:
        return None
    found: dict[int, int] = {}
    for number in numbers:
        line = hints.get(number)
        if not line or line > len(lines):
            return None
        match = _STATUS_LINE.match(lines[line - 1])
        if match is None or int(match.group("n")) != number:
            return None
        found[number] = line - 1
    return found


def set_part_status(
    path: Path,
    updates: dict[int, str],
    now: datetime | None = None,
    *,
    status_lines: dict[int, int] | None = None,
) -> EditResult:
    """Set PART statuses in the plan file: ``{number: "done" | "pending"}``.

    "done" ticks the checkbox and stamps ``(Completed YYYY-MM-DD HH:MM)``;
    "pending" unticks it and removes the stamp. ``status_lines`` (optional): the
    1-based status lines of these PARTs from an earlier parse; where each still
    holds its PART's status line, the plan is not parsed again (the runner ticks
    PARTs one by one, and a parse costs far more than the edit).
    """
    path = Path(path)
    with _file_lock(path):
        raw = path.read_bytes()
        decoded = decode_plan_bytes(raw)
        lines = _LINE.findall(decoded.text)
        indexes = _hinted_indexes(lines, updates, status_lines)
        if indexes is None:
            plan = parse_plan(decoded.text, str(path))
            indexes = {}
            for number in updates:
                part = plan.part(number)
                if part is None or part.status_line is None:
                    raise PlanError(f"{path}: PART {number} has no status line to edit")
                indexes[number] = part.status_line - 1
        stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
        changed: list[int] = []
        for number, status in sorted(updates.items()):
            index = indexes[number]
            if status == "done":
                new = _rewrite_status(lines[index], "✓", stamp)
            elif status == "pending":
                new = _rewrite_status(lines[index], " ", None)
            else:
                raise ValueError(f"unknown status {status!r}")
            if new != lines[index]:
                lines[index] = new
                changed.append(number)
        data = "".join(lines).encode("utf-8")
        if data == raw:
            return EditResult(changed_parts=[], repairs_written=[])
        atomic_write_bytes(path, data)
        return EditResult(changed_parts=changed, repairs_written=list(decoded.repairs))
