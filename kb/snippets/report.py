"""People-facing output of a validation run: a rich table and a summary."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kb.snippets.results import STATUSES

# Above this many rows the table lists only what needs a person (failures first): a table of
# 15,000 rows is unreadable, and rich takes seconds to lay it out.
TABLE_ROWS = 300
ATTENTION = ("fail", "timeout", "error", "fragment", "defines-only", "skip", "not-executable", "pass")

STYLE = {
    "pass": "green",
    "defines-only": "cyan",
    "fragment": "magenta",
    "fail": "red",
    "timeout": "red",
    "error": "bold red",
    "skip": "yellow",
    "not-executable": "dim",
}


def shown_rows(rows: list[dict], show_all: bool = True) -> tuple[list[dict], int]:
    """The rows the table lists and how many it leaves out: all of them (without passes when not
    ``show_all``) up to TABLE_ROWS, else the failing ones first, up to TABLE_ROWS."""
    wanted = [r for r in rows if show_all or r["status"] not in ("pass", "not-executable", "defines-only")]
    if len(wanted) <= TABLE_ROWS:
        return wanted, 0
    rank = {s: n for n, s in enumerate(ATTENTION)}
    ordered = sorted(wanted, key=lambda r: rank.get(r["status"], 0))
    return ordered[:TABLE_ROWS], len(wanted) - TABLE_ROWS


def table(rows: list[dict], show_all: bool = True) -> Table:
    """One row per snippet: where, language, status, time, reason."""
    rows, left_out = shown_rows(rows, show_all)
    caption = f"{left_out} more rows not shown (all of them in snippets/results.json and --json)" if left_out else None
    out = Table(title="snippets", title_justify="left", show_lines=False, caption=caption, caption_justify="left")
    out.add_column("snippet", overflow="fold")
    out.add_column("lang")
    out.add_column("status")
    out.add_column("s", justify="right")
    out.add_column("reason", overflow="fold")
    for row in rows:
        status = row["status"] + (" (cached)" if row.get("cached") else "")
        seconds = f"{row['seconds']:.2f}" if row["status"] not in ("skip", "not-executable") and not (row["status"] == "fragment" and not row.get("seconds")) else ""
        out.add_row(escape(f"{row['file']}:{row['line']}"), escape(row["language"] or "-"), f"[{STYLE.get(row['status'], '')}]{status}[/]",
                    seconds, escape(row.get("reason") or ""))
    return out


def summary_line(rows: list[dict]) -> str:
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    parts = [f"[{STYLE.get(s, '')}]{counts[s]} {s}[/]" for s in STATUSES if counts[s]]
    return ", ".join(parts) if parts else "no snippets"


def print_report(console: Console, rows: list[dict], document: dict, ran: int, cached: int, seconds: float, show_all: bool) -> None:
    if rows:
        console.print(table(rows, show_all))
    env, iso = document.get("environment", {}), document.get("isolation", {})
    console.print(f"{summary_line(rows)}  ({ran} run, {cached} cached, {seconds:.2f} s)")
    gpu = env.get("gpu") or "no GPU"
    console.print(
        f"environment: Python {env.get('python')}, torch {env.get('torch') or '-'}, CUDA {env.get('cuda') or '-'}, {gpu}; "
        f"profile {env.get('profile')} [dim]({env.get('fingerprint')})[/]"
    )
    if iso:
        console.print(
            f"isolation: network {iso.get('network')} ({iso.get('network_mode', '')}); memory {iso.get('memory')}; "
            f"processes {iso.get('processes')}"
        )
        if "complete" in iso:  # the sandbox's own words: what a snippet can and cannot reach
            state = "complete" if iso["complete"] else f"[bold red]INCOMPLETE[/] (missing: {', '.join(iso.get('missing', []))})"
            console.print(f"sandbox: {state}; filesystem {iso.get('filesystem')}; {iso.get('processes_seen')}")
