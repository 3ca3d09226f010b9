"""Change a plan's PART status lines and nothing else.

Every other byte, line endings and trailing whitespace included, stays as it was;
a line in another encoding stays in it. A plan that needed a mojibake repair is
written back repaired where that round-trips (the caller is told). An edit that
changes nothing writes nothing. Writes are atomic, and a per-file lock serialises
concurrent ticks from parallel runners.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kb.errors import PlanError
from kb.fsutil import atomic_write_bytes
from kb.plan.encoding import decode_plan_bytes
from kb.plan.parser import parse_plan
from kb.plan.status import read_status_line, rewrite_status_line

_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass
class EditResult:
    changed_parts: list[int]
    repairs_written: list[str]


def _file_lock(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), threading.Lock())


def _hinted_indexes(lines: list[str], numbers, hints: dict[int, int] | None) -> dict[int, list[int]] | None:
    """0-based line indexes from a caller's status-line hints, or None unless every hinted line still is
    the status line of its PART (then the plan need not be parsed again)."""
    if not hints:
        return None
    found: dict[int, list[int]] = {}
    for number in numbers:
        line = hints.get(number)
        if not line or line > len(lines):
            return None
        status = read_status_line(lines[line - 1])
        if status is None or status.number != number:
            return None
        found[number] = [line - 1]
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
        lines = list(decoded.lines)
        indexes = _hinted_indexes(lines, updates, status_lines)
        if indexes is None:
            plan = parse_plan(decoded.text, str(path))
            indexes = {}
            for number in updates:
                part = plan.part(number)
                if part is None or not part.status_lines:
                    raise PlanError(f"{path}: PART {number} has no status line to edit")
                indexes[number] = [line - 1 for line in part.status_lines]
        stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
        changed: list[int] = []
        edited: set[int] = set()
        for number, status in sorted(updates.items()):
            if status not in ("done", "pending"):
                raise ValueError(f"unknown status {status!r}")
            for index in indexes[number]:
                new = rewrite_status_line(lines[index], "✓", stamp) if status == "done" \
                    else rewrite_status_line(lines[index], " ", None)
                if new is None:
                    raise PlanError(f"{path}:{index + 1}: cannot find the checkbox of status line {lines[index].strip()!r}")
                if new != lines[index]:
                    lines[index] = new
                    edited.add(index)
                    if number not in changed:
                        changed.append(number)
        if not edited:
            # A no-op writes nothing: not a BOM, not a mojibake repair, not a line ending.
            return EditResult(changed_parts=[], repairs_written=[])
        try:
            data, repairs = decoded.encode(lines, edited)
        except PlanError as exc:
            raise PlanError(f"{path}: {exc}") from None
        atomic_write_bytes(path, data)
        return EditResult(changed_parts=changed, repairs_written=repairs)
