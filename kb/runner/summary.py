"""The batch summary at the review gate: one row per PART, totals, and a rich table of it."""

from __future__ import annotations

from rich.table import Table

STATUS_STYLE = {"done": "green", "failed": "red", "skipped": "cyan"}


def summarize(results: list[dict], *, label: str = "") -> dict:
    """Rows sorted by PART number (one per PART: the last result wins) and totals by status."""
    by_part: dict[int, dict] = {}
    for result in results:
        by_part[result["part"]] = result
    rows = [by_part[n] for n in sorted(by_part)]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "skipped")}
    return {
        "label": label,
        "rows": rows,
        "counts": counts,
        "seconds": round(sum(r.get("seconds") or 0.0 for r in rows), 2),
        "tokens": {
            "input": sum((r.get("tokens") or {}).get("input", 0) for r in rows),
            "output": sum((r.get("tokens") or {}).get("output", 0) for r in rows),
        },
        "usage": stage_usage(rows),
    }


def stage_usage(rows: list[dict]) -> dict:
    """Tokens, calls and dollars per stage (research, write_sections, write_overview) over the rows."""
    totals: dict[str, dict] = {}
    for row in rows:
        for stage, usage in (row.get("usage") or {}).items():
            entry = totals.setdefault(stage, {})
            for key, value in usage.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    entry[key] = round(entry.get(key, 0) + value, 6)
    return totals


def usage_line(summary: dict) -> str | None:
    """One line: tokens in/out (and dollars) per stage; None when no stage used a model."""
    usage = summary.get("usage") or {}
    if not usage:
        return None
    parts = []
    for stage, u in usage.items():
        cost = f", ${u['cost_usd']:.4f}" if "cost_usd" in u else ""
        parts.append(f"{stage.replace('_', ' ')} {int(u.get('input', 0)):,} in / {int(u.get('output', 0)):,} out{cost}")
    return "tokens by stage: " + "; ".join(parts)


def summary_table(summary: dict, *, title: str | None = None) -> Table:
    """part, file, sections, sources, snippets, seconds, status."""
    table = Table(title=title or f"{summary.get('label') or 'Run'} summary", title_justify="left")
    table.add_column("part", justify="right")
    table.add_column("file", overflow="fold")
    table.add_column("sections", justify="right")
    table.add_column("sources", justify="right")
    table.add_column("snippets", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("status", overflow="fold")
    for row in summary["rows"]:
        style = STATUS_STYLE.get(row["status"], "")
        status = f"[{style}]{row['status']}[/]" if style else row["status"]
        planned, empty = row.get("sections", 0), row.get("sections_empty", 0)
        if empty:  # a PART that wrote its file with sections marked empty is partial, not simply done
            status = f"[yellow]partial[/] ({empty} empty)"
        table.add_row(
            str(row["part"]),
            _escape(row.get("file") or row.get("target") or "-"),
            f"{planned - empty} of {planned}" if empty else str(planned),
            str(row.get("sources", 0)),
            str(row.get("snippets", 0)),
            f"{row.get('seconds') or 0:.1f}",
            status,
        )
    return table


def print_summary(console, summary: dict) -> None:
    """The table, then why each PART that did not finish did not (reasons are too long for a cell)."""
    if not summary["rows"]:
        return
    console.print(summary_table(summary))
    line = usage_line(summary)
    if line:
        console.print(line, markup=False, highlight=False)
    for row in summary["rows"]:
        if row.get("reason") and row["status"] != "done":
            console.print(f"  PART {row['part']} {row['status']}: {row['reason']}", markup=False, highlight=False)


def counts_line(summary: dict) -> str:
    counts = summary["counts"]
    parts = [f"{counts['done']} done", f"{counts['failed']} failed"]
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} already done")
    return ", ".join(parts)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))
