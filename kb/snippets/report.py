"""People-facing output of a validation run: a rich table and a summary."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from kb.snippets.results import STATUSES

STYLE = {
    "pass": "green",
    "fail": "red",
    "timeout": "red",
    "error": "bold red",
    "skip": "yellow",
    "not-executable": "dim",
}


def table(rows: list[dict], show_all: bool = True) -> Table:
    """One row per snippet: where, language, status, time, reason."""
    out = Table(title="snippets", title_justify="left", show_lines=False)
    out.add_column("snippet", overflow="fold")
    out.add_column("lang")
    out.add_column("status")
    out.add_column("s", justify="right")
    out.add_column("reason", overflow="fold")
    for row in rows:
        if not show_all and row["status"] in ("pass", "not-executable"):
            continue
        status = row["status"] + (" (cached)" if row.get("cached") else "")
        seconds = f"{row['seconds']:.2f}" if row["status"] not in ("skip", "not-executable") else ""
        out.add_row(f"{row['file']}:{row['line']}", row["language"] or "-", f"[{STYLE.get(row['status'], '')}]{status}[/]", seconds, row.get("reason") or "")
    return out


def summary_line(rows: list[dict]) -> str:
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    parts = [f"[{STYLE[s]}]{counts[s]} {s}[/]" for s in STATUSES if counts[s]]
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
