"""The report for people: one table row per knowledge file, a totals block, plan progress, problems."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table

from kb.report.model import FileReport, PlanProgress, Report

PROBLEMS_SHOWN = 15
REASONS_SHOWN = 10


def _ratio(have: int, want: int | None) -> str:
    if want is None:
        return f"{have}/?"
    style = "green" if have >= want else "red"
    return f"[{style}]{have}/{want}[/]"


def _drop_cell(entry: FileReport) -> str:
    if not entry.drops:
        return "[dim]none[/]"
    waiting = sum(1 for d in entry.drops if not d.consolidated)
    failed = sum(1 for d in entry.drops if d.status == "failed")
    word = "[yellow]pending[/]" if waiting else "[green]done[/]"
    extra = [f"{len(entry.drops)} drops"] if len(entry.drops) > 1 else []
    extra += [f"{waiting} pending"] if waiting and len(entry.drops) > 1 else []
    extra += [f"{failed} failed"] if failed else []
    rate = entry.drops[-1].support_rate
    extra += [f"support {rate:.0%}"] if rate is not None else []  # the latest drop's checked sentences
    return word + (f" ({', '.join(extra)})" if extra else "")


def _count(n: int, style: str) -> str:
    return f"[{style}]{n}[/]" if n else "[dim]0[/]"


def file_table(report: Report) -> Table:
    table = Table(
        title="kb report: knowledge files", title_justify="left", caption_justify="left",
        caption="sections: planned present/planned (?: no PART plans the file) · cited: sections with a citation · "
                "citations: resolved/total · sources: local docs/knowledge tree/web · "
                "drop: done = consolidated, pending = waiting for kb consolidate",
    )
    table.add_column("file", overflow="fold", min_width=12)
    for name in ("sections", "cited", "citations", "sources", "pass", "defs only", "fail", "fragment", "skip", "not run"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("drop", no_wrap=True)
    for f in report.files:
        name = escape(f.file.removeprefix("knowledge/"))
        if not f.front_matter:
            name += " [dim](no front matter)[/]"
        if f.error:
            name += f" [red]({escape(f.error)})[/]"
        sources = f"{f.sources['local']}/{f.sources['knowledge']}/{f.sources['web']}"
        if f.sources.get("other"):
            sources += f" +{f.sources['other']} other"
        table.add_row(
            name,
            _ratio(f.sections_present, f.sections_planned),
            f"{f.sections_cited}/{f.sections_present}",
            _ratio(f.citations_resolved, f.citations) if f.citations else "[dim]0/0[/]",
            sources,
            _count(f.snippets["pass"], "green"),
            _count(f.snippets["defines_only"], "cyan"),
            _count(f.snippets["fail"], "red"),
            _count(f.snippets["fragment"], "magenta"),
            _count(f.snippets["skip"], "yellow"),
            _count(f.snippets["not_run"], "yellow"),
            _drop_cell(f),
        )
    return table


def _snippet_words(f: FileReport) -> str:
    counts = [(f.snippets["pass"], "pass", "green"), (f.snippets["fail"], "fail", "red"),
              (f.snippets["skip"], "skip", "yellow"), (f.snippets["not_run"], "not run", "yellow")]
    words = [f"[{style}]{n} {word}[/]" for n, word, style in counts if n]
    return ", ".join(words) if words else "[dim]none[/]"


def file_list(out: Console, report: Report) -> None:
    """The per-file report for a narrow console (80 columns, a pipe): each file's path on a line of
    its own, never cut, then its numbers on an indented line below."""
    out.print("[bold]kb report: knowledge files[/]")
    for f in report.files:
        name = escape(f.file.removeprefix("knowledge/"))
        notes = (" [dim](no front matter)[/]" if not f.front_matter else "") + \
                (f" [red]({escape(f.error)})[/]" if f.error else "")
        out.print(f"[bold]{name}[/]{notes}", soft_wrap=True)
        # Sources by kind are left to the totals and --json: the line stays within 80 columns.
        citations = _ratio(f.citations_resolved, f.citations) if f.citations else "[dim]0/0[/]"
        numbers = (f"sections {_ratio(f.sections_present, f.sections_planned)}, {f.sections_cited} cited · "
                   f"citations {citations} · snippets {_snippet_words(f)} · drop {_drop_cell(f)}")
        out.print(Padding(numbers, (0, 0, 0, 4), expand=False))
    out.print("[dim]sections: planned present/planned (?: no PART plans the file), and how many cite a source · "
              "citations: resolved/total · drop: done = consolidated, pending = waiting for kb consolidate · "
              "a wider terminal shows a table[/]")


def _table_fits(out: Console, table: Table) -> bool:
    """Whether the table fits the console unshrunk: shrunk, rich folds the file column first, and at
    80 columns (a terminal's default, and every pipe) it leaves no room for a file name at all."""
    unbounded = out.options.update(width=100_000, max_width=100_000)  # Measurement.get clamps to the options' width
    return Measurement.get(out, unbounded, table).maximum <= out.width


def _plan_line(plan: PlanProgress) -> str:
    state = " [dim](completed)[/]" if plan.completed else ""
    head = f"{escape(plan.path)}{state}: {plan.done}/{plan.total} parts done"
    head += f", [red]{plan.failed} failed[/]" if plan.failed else ", 0 failed"
    head += f", {plan.pending} pending"
    batches = "; ".join(
        f"batch {b.number}: {b.done}/{b.total}" + (f" ({b.failed} failed)" if b.failed else "") for b in plan.batches
    )
    return f"  {head}\n    {batches}" if batches else f"  {head}"


def print_report(out: Console, report: Report) -> None:
    """The whole report on ``out``."""
    totals = report.totals()
    if report.files:
        table = file_table(report)
        if _table_fits(out, table):
            out.print(table)
        else:
            file_list(out, report)
    else:
        out.print("[yellow]no knowledge files yet[/] (knowledge/ has no .md file)")
    t = totals
    out.print()
    out.print("[bold]Totals[/]")
    out.print(f"  files: {t['files']} ({t['files_without_front_matter']} without front matter, "
              f"{t['files_without_plan']} in no plan)")
    out.print(f"  planned sections present: {_ratio(t['sections_present'], t['sections_planned'])}"
              f" ({t['sections_missing']} missing); sections with a citation: "
              f"{t['sections_cited']}/{t['sections_present'] + t['sections_unplanned']}")
    chosen = f", {t['sections_curated']} with a passage a reviewer chose" if t.get("sections_curated") else ""
    out.print(f"  sections filled (cited): {t['sections_filled']} ({t['sections_linked']} only pointing to their answer"
              f"{chosen}), marked empty: {t['sections_empty']}, neither: {t['sections_unsupported']}")
    out.print(f"  citations resolved: {_ratio(t['citations_resolved'], t['citations'])}"
              f" ({t['citations_unresolved']} unresolved)")
    out.print(f"  relative links: {t['links']} ({t['links_broken']} broken); examples or quotes repeated from "
              f"another file: {t['excerpts_repeated']}")
    s = t["sources"]
    other = f", other {s['other']}" if s.get("other") else ""
    out.print(f"  sources: local docs {s['local']}, knowledge tree {s['knowledge']}, web {s['web']}{other}")
    n = t["snippets"]
    stale = f", {t['snippets_stale']} changed since their last run" if t["snippets_stale"] else ""
    out.print(f"  snippets: {n['total']} (pass {n['pass']}, defines only {n['defines_only']}, fail {n['fail']}, "
              f"fragment {n['fragment']}, skip {n['skip']}, not run {n['not_run']}{stale})")
    if report.results_generated:
        out.print(f"    [dim]results of {escape(str(report.results_generated))}[/]")
    else:
        out.print("    [dim]no snippets/results.json yet: kb validate-snippets writes it[/]")
    reasons = list(t["skip_reasons"].items())
    for reason, count in reasons[:REASONS_SHOWN]:
        out.print(f"    skipped, {escape(repr(reason))}: {count}")
    if len(reasons) > REASONS_SHOWN:
        rest = sum(count for _, count in reasons[REASONS_SHOWN:])
        out.print(f"    skipped for {len(reasons) - REASONS_SHOWN} other reasons: {rest} (all of them in --json)")
    d = t["drops"]
    out.print(f"  drops: {d['total']} ({d['consolidated']} consolidated, {d['not_consolidated']} pending, "
              f"{d['failed']} failed, {d['without_file']} without a file"
              + (f", {d['unreadable']} unreadable" if d["unreadable"] else "") + ")")
    out.print()
    out.print("[bold]Plans[/]")
    if not report.plans:
        out.print("  none found in plans/ or plans/completed/")
    for plan in report.plans:
        out.print(_plan_line(plan))
    for skipped in report.skipped_plans:
        out.print(f"  [dim]skipped {escape(skipped['path'])}: {escape(skipped['reason'])}[/]")
    problems = report.problems()
    if problems:
        out.print()
        out.print(f"[bold red]Problems[/] ({len(problems)}; --strict exits 1 on these)")
        for line in problems[:PROBLEMS_SHOWN]:
            out.print(f"  {escape(line)}")
        if len(problems) > PROBLEMS_SHOWN:
            out.print(f"  ... and {len(problems) - PROBLEMS_SHOWN} more (all of them in --json)")
