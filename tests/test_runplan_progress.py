"""What a person sees: the live per-PART stage lines, the finished lines in logs, and the summary table."""

from __future__ import annotations

from rich.console import Console

from kb.plan.model import Part
from kb.runner.progress import ProgressView
from kb.runner.summary import counts_line, print_summary, summarize, summary_table


def _console() -> Console:
    return Console(record=True, width=160, force_terminal=False, color_system=None)


def test_live_view_shows_one_line_per_part_and_its_stage():
    console = _console()
    view = ProgressView(console, live=False)
    view.start("BATCH 2", [Part(number=5, title="a", line=1, target="p/04-a.md"),
                           Part(number=6, title="b", line=2, target="p/05-b.md")])
    view.event({"part": 5, "stage": "write", "attempt": 1, "write": 2})
    view.event({"part": 6, "stage": "research", "attempt": 2, "write": 0})
    console.print(view._render())
    text = console.export_text()
    assert "BATCH 2: 0/2 PARTs finished" in text
    assert "PART 5" in text and "write" in text and "rewrite 1" in text
    assert "PART 6" in text and "research" in text and "retry 1" in text


def test_finished_parts_print_a_line_when_not_on_a_terminal():
    console = _console()
    view = ProgressView(console, live=False)
    view.start("BATCH 1", [Part(number=1, title="a", line=1, target="t/a.md")])
    view.event({"part": 1, "stage": "failed", "result": {"reason": "refused: outside", "file": None, "seconds": 0.25}})
    assert "PART 1 failed: refused: outside (t/a.md, 0.2 s)" in console.export_text()


def test_summary_table_has_the_review_columns_and_reasons():
    rows = [
        {"part": 6, "file": "knowledge/b.md", "status": "failed", "reason": "writer error [x]", "sections": 0,
         "sources": 0, "snippets": 0, "seconds": 1.0, "tokens": {"input": 1, "output": 2}},
        {"part": 5, "file": "knowledge/a.md", "status": "done", "reason": None, "sections": 8, "sources": 4,
         "snippets": 3, "seconds": 2.5, "tokens": {"input": 10, "output": 20}},
        {"part": 7, "file": "knowledge/c.md", "status": "done", "reason": None, "sections": 8, "sections_empty": 5,
         "sources": 1, "snippets": 0, "seconds": 1.5, "tokens": {"input": 1, "output": 1}},
    ]
    summary = summarize(rows, label="BATCH 2")
    assert [r["part"] for r in summary["rows"]] == [5, 6, 7]
    assert summary["counts"] == {"done": 2, "failed": 1, "skipped": 0} and summary["tokens"] == {"input": 12, "output": 23}
    assert counts_line(summary) == "2 done, 1 failed"
    table = summary_table(summary)
    assert [c.header for c in table.columns] == ["part", "file", "sections", "sources", "snippets", "seconds", "status"]
    console = _console()
    print_summary(console, summary)
    text = console.export_text()
    assert "knowledge/a.md" in text and "2.5" in text
    # A PART whose file marks sections empty says so: 3 of 8 filled, partial (never a bare "done").
    row7 = next(line for line in text.splitlines() if "knowledge/c.md" in line)
    assert "3 of 8" in row7 and "partial (5 empty)" in row7 and "done" not in row7
    assert "PART 6 failed: writer error [x]" in text  # markup-looking text printed as it is
