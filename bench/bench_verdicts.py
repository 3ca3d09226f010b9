"""Benchmark of kb's snippet verdicts against a labelled set (issue 20). Prints the confusion matrix.

    .venv/bin/python bench/bench_verdicts.py

The set is tests/fixtures/verdicts/ (over 200 snippets in real-world shapes, each labelled by
QUALITY.md's rules). kb's real validation runs it in a fresh workspace; rows are the labels,
columns kb's verdicts. Targets: false failures (kb says fail, the label is not fail) at most 3% of
kb's failures, wrong skips (a skip where the label is not that skip) at most 2% of kb's skips,
every labelled failure reported as a failure.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from snippet_verdicts_set import KB_STATUSES, VERDICTS, run_set, score  # noqa: E402


def main() -> None:
    out = Console(width=max(120, Console().width))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kb-bench-verdicts-") as tmp:
        cases, environment = run_set(Path(tmp))
    seconds = time.perf_counter() - started
    result = score(cases, environment)
    table = Table(title=f"kb verdicts vs labels ({result.cases} snippets, {seconds:.1f} s)", title_justify="left")
    table.add_column("label \\ kb")
    for status in KB_STATUSES:
        table.add_column(status, justify="right")
    for label in VERDICTS:
        row = result.matrix[label]
        table.add_row(label, *[(f"[bold]{row[s]}[/]" if s == label else str(row[s])) if row[s] else "[dim]0[/]" for s in KB_STATUSES])
    out.print(table)
    out.print(f"false failures: {len(result.false_failures)} of {result.kb_failures} failures "
              f"({result.false_failure_rate:.1%}; target <= 3%)")
    out.print(f"wrong skips: {len(result.wrong_skips)} of {result.kb_skips} skips ({result.wrong_skip_rate:.1%}; target <= 2%)")
    out.print(f"labelled failures not reported as failures: {len(result.missed_failures)} (target 0)")
    agree = result.cases - len(result.disagreements)
    out.print(f"agreement: {agree}/{result.cases} ({agree / result.cases:.1%})")
    for case in result.disagreements:
        out.print(f"  [dim]{case.file}:{case.line}[/] label {case.label}{':' + case.category if case.category else ''}, "
                  f"kb {case.status}: {case.reason}")


if __name__ == "__main__":
    main()
