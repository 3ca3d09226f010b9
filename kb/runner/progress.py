"""What a person sees while a batch runs: a rich Live view, one line per PART and its stage.

The graph's nodes report ``{"part": n, "stage": ...}`` on LangGraph's custom
stream; :meth:`ProgressView.event` takes those. On a terminal the lines redraw in
place; elsewhere (logs, CI, tests) one line is printed as each PART finishes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from kb.plan.model import Part

FINISHED = {"done", "failed", "skipped"}
STYLE = {"done": "green", "failed": "red", "skipped": "cyan", "queued": "dim"}


@dataclass
class _Row:
    number: int
    target: str
    stage: str = "queued"
    detail: str = ""
    started: float | None = None
    ended: float | None = None
    final: float | None = None  # the task's own seconds (summed over stages, across resumes)


class ProgressView:
    """Live stage lines for the PARTs of one unit; safe to feed from the event loop while rich redraws."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live_enabled = console.is_terminal if live is None else live
        self._rows: dict[int, _Row] = {}
        self._label = ""
        self._note = ""
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._spinner = Spinner("dots")

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, label: str, parts: list[Part]) -> None:
        with self._lock:
            self._label = label
            self._rows = {p.number: _Row(p.number, p.target or "(no target)") for p in parts}
            self._note = ""
        if self.live_enabled:
            self._live = Live(console=self.console, get_renderable=self._render, refresh_per_second=8, transient=True)
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # --- input -------------------------------------------------------------------------------

    def note(self, message: str) -> None:
        """A line above the PARTs (e.g. the corpus index loading)."""
        with self._lock:
            self._note = message

    def event(self, chunk: dict) -> None:
        number, stage = chunk.get("part"), chunk.get("stage")
        if number is None or stage is None:
            return
        now = time.monotonic()
        with self._lock:
            row = self._rows.setdefault(number, _Row(number, "?"))
            row.started = row.started or now
            row.stage = stage
            row.detail = f"rewrite {chunk['write'] - 1}" if stage == "write" and chunk.get("write", 1) > 1 else ""
            if chunk.get("attempt", 1) > 1:
                row.detail = (row.detail + " " if row.detail else "") + f"retry {chunk['attempt'] - 1}"
            if stage in FINISHED:
                row.ended = now
                result = chunk.get("result") or {}
                row.detail = result.get("reason") or ""
                if result.get("file"):
                    row.target = result["file"]
                if result.get("seconds") is not None:
                    row.final = float(result["seconds"])
        if stage in FINISHED and not self.live_enabled:
            self.console.print(self._finished_line(row), markup=False, highlight=False)

    # --- rendering ---------------------------------------------------------------------------

    @staticmethod
    def _seconds(row: _Row) -> float:
        if row.final is not None:
            return row.final
        if row.started is None:
            return 0.0
        return (row.ended if row.ended is not None else time.monotonic()) - row.started

    def _finished_line(self, row: _Row) -> str:
        tail = f": {row.detail}" if row.detail else ""
        return f"PART {row.number} {row.stage}{tail} ({row.target}, {self._seconds(row):.1f} s)"

    def _render(self):
        with self._lock:
            rows = [(_Row(**vars(r))) for r in self._rows.values()]
            note, label = self._note, self._label
        done = sum(r.stage in FINISHED for r in rows)
        table = Table.grid(padding=(0, 2))
        for _ in range(5):
            table.add_column()
        for row in sorted(rows, key=lambda r: r.number):
            running = row.stage not in FINISHED and row.stage != "queued"
            mark = self._spinner if running else Text("✓" if row.stage == "done" else "✗" if row.stage == "failed" else "·")
            stage = Text(row.stage, style=STYLE.get(row.stage, "yellow"))
            table.add_row(mark, Text(f"PART {row.number}"), stage, Text(f"{self._seconds(row):5.1f}s"),
                          Text(f"{row.target}  {row.detail}".rstrip(), overflow="ellipsis", no_wrap=True))
        head = Text.from_markup(f"[bold]{escape(label)}[/]: {done}/{len(rows)} PARTs finished")
        parts = [head] + ([Text(note, style="dim")] if note else []) + [table]
        return Group(*parts)
