"""`kb curate offers|accept|reject|list`: a reviewer's verdicts on what research offers a section (kb.curation)."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.commands.common import WorkspaceOption, console, err_console, print_json, workspace_from
from kb.errors import PlanError

curate_app = typer.Typer(
    help="Review what research offers a planned section: accept a passage it ranked too low, reject one it picked.",
    no_args_is_help=True,
)


def _plan(workspace, path: Path):
    from kb.commands.plan import resolve_plan_path
    from kb.plan import load_plan

    resolved, shown = resolve_plan_path(path, workspace.root)
    return load_plan(resolved, shown)


def _section(plan, where: str):
    """``PART.SECTION`` (12.5) of ``plan``: the PART and the section, or a PlanError naming what exists."""
    try:
        part_no, section_no = (int(x) for x in where.split(".", 1))
    except ValueError:
        raise PlanError(f"{where!r}: name a section as PART.SECTION, e.g. 12.5") from None
    part = next((p for p in plan.parts if p.number == part_no), None)
    if part is None:
        raise PlanError(f"{plan.path} has no PART {part_no} (it has {', '.join(str(p.number) for p in plan.parts)})")
    section = next((s for s in part.sections if s.number == section_no), None)
    if section is None:
        numbers = ", ".join(str(s.number) for s in part.sections) or "none"
        raise PlanError(f"PART {part_no} of {plan.path} has no section {section_no} (its sections: {numbers})")
    return part, section


def _reviewer(workspace) -> str:
    """Who is deciding: git's user.name for the workspace, else the login name."""
    import getpass

    try:
        import git

        name = git.Repo(workspace.root, search_parent_directories=True).config_reader().get_value("user", "name", "")
        if name:
            return str(name)
    except Exception:  # noqa: BLE001 - no repository or no git: the login name will do
        pass
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "a reviewer"


def _target(plan_path: Path, where: str, workspace_root: Path | None):
    """What a decision is about: (workspace, plan, PART, section), or the user's mistake named."""
    workspace = workspace_from(workspace_root, plan_path)
    plan = _plan(workspace, plan_path)
    return (workspace, plan, *_section(plan, where))


def _rewrite_hint(plan, part, section) -> str:
    return (f"for PART {part.number} section {section.number} ({section.title}). "
            f"Rewrite its file with: kb run-plan {plan.path} --part {part.number} --redo")


def _decide(verdict: str, plan_path: Path, where: str, source: str, by: str | None, why: str,
            workspace_root: Path | None) -> None:
    from kb.curation import Decision, plan_key, record_decision

    workspace, plan, part, section = _target(plan_path, where, workspace_root)
    if verdict == "accept":
        from kb.corpus.index import load_corpus

        if load_corpus(workspace).at(source) is None:
            raise PlanError(f"the corpus holds no {source!r}: `kb curate offers {plan.path} --part {part.number}` "
                            "lists what research offers, by locator")
    replaced = record_decision(workspace.root, Decision(plan=plan_key(plan), part=part.number, section=section.number,
                                                        source=source, verdict=verdict, by=by or _reviewer(workspace),
                                                        why=why))
    done = "replaced the earlier decision:" if replaced else "recorded in curation.toml:"
    console().print(f"{done} {verdict} {source} {_rewrite_hint(plan, part, section)}")


def _verdict_command(verdict: str, summary: str, source_help: str, why_help: str):
    """The ``kb curate accept|reject`` command: the same arguments, one verdict."""

    def command(
        plan_path: Path = typer.Argument(..., metavar="PLAN", help="The plan file."),
        where: str = typer.Argument(..., metavar="PART.SECTION", help="The planned section, e.g. 12.5."),
        source: str = typer.Argument(..., metavar="SOURCE", help=source_help),
        by: str = typer.Option(None, "--by", help="Who decides (default: git's user.name)."),
        why: str = typer.Option("", "--why", help=why_help),
        workspace_root: Path = WorkspaceOption,
    ) -> None:
        _decide(verdict, plan_path, where, source, by, why, workspace_root)

    command.__doc__ = summary
    command.__name__ = verdict
    return command


curate_app.command("accept")(_verdict_command(
    "accept", "Fill a section with a passage research ranked below its bar (the file says a reviewer chose it).",
    "The passage's locator (an API path such as torch.jit.save, or a file).",
    "Why the passage is about the section, for the next reviewer."))
curate_app.command("reject")(_verdict_command(
    "reject", "Never fill a section with this passage, whatever research ranks it.",
    "The passage's locator, as the knowledge file cites it.", "Why the passage is not about the section."))


@curate_app.command("forget")
def forget(
    plan_path: Path = typer.Argument(..., metavar="PLAN", help="The plan file."),
    where: str = typer.Argument(..., metavar="PART.SECTION", help="The planned section, e.g. 12.5."),
    source: str = typer.Argument(..., metavar="SOURCE", help="The passage's locator, as the decision names it."),
    workspace_root: Path = WorkspaceOption,
) -> None:
    """Remove a decision: research judges that passage for that section again."""
    from kb.curation import forget_decision, plan_key

    workspace, plan, part, section = _target(plan_path, where, workspace_root)
    if not forget_decision(workspace.root, plan_key(plan), part.number, section.number, source):
        raise PlanError(f"curation.toml has no decision on {source} for PART {part.number} section {section.number}; "
                        "`kb curate list` shows them")
    console().print(f"forgot the decision on {source} {_rewrite_hint(plan, part, section)}")


@curate_app.command("list")
def list_decisions(
    as_json: bool = typer.Option(False, "--json", help="Print the decisions as one JSON document."),
    workspace_root: Path = WorkspaceOption,
) -> None:
    """The workspace's decisions (curation.toml)."""
    from dataclasses import asdict

    from kb.curation import load_decisions

    decisions = load_decisions(workspace_from(workspace_root).root)
    items = list(decisions.items.values())
    if as_json:
        print_json({"path": str(decisions.path), "decisions": [asdict(d) for d in items]})
        return
    out = console()
    if not items:
        out.print("No decisions yet: `kb curate offers PLAN` lists what research offers the sections it left empty.")
    for d in items:
        note = f": {d.why}" if d.why else ""
        out.print(f"{d.verdict:<7} {d.plan} {d.part}.{d.section} {d.source} ({d.by or 'unsigned'}){note}")


@curate_app.command("offers")
def offers(
    plan_path: Path = typer.Argument(..., metavar="PLAN", help="The plan file."),
    parts: list[int] = typer.Option(None, "--part", help="Only this PART (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the offers as one JSON document."),
    workspace_root: Path = WorkspaceOption,
) -> None:
    """The passages research ranked just below its bar for each section it leaves empty, to accept or leave.

    Local research only (the local corpus): each offer is a passage an LLM engine's relevance judge would be
    asked about. Reading them is the review; `kb curate accept` records the ones about their section.
    """
    from kb.engine.offline.research import LocalResearcher
    from kb.runner.stages import read_context

    workspace = workspace_from(workspace_root, plan_path)
    plan = _plan(workspace, plan_path)
    chosen = [p for p in plan.parts if not parts or p.number in parts]
    if parts and not chosen:
        raise PlanError(f"{plan.path} has no PART {', '.join(map(str, parts))}")
    researcher = LocalResearcher(workspace, passages_per_section=workspace.config.run.passages_per_section)
    researcher.use_plan(plan)
    index = researcher.corpus()
    found = []
    for n, part in enumerate(chosen, 1):
        err_console().print(f"[dim]researching PART {part.number} ({n}/{len(chosen)})[/]")
        context, _missing = read_context(workspace, part)
        research = researcher.research_sync(part, context, index)
        for section in part.sections:
            offered = research.candidates.get(section.number) or []
            if offered:
                found.append({"part": part.number, "section": section.number, "title": section.title,
                              "details": section.details or "",
                              "offers": [{"source": p.locator, "excerpt": p.text[:300]} for p in offered]})
    if as_json:
        print_json({"plan": str(plan.path), "sections": found})
        return
    out = console()
    if not found:
        out.print("Research offers nothing more: every section is filled, or nothing in the corpus comes near it.")
    for entry in found:
        details = f" ({entry['details']})" if entry["details"] else ""
        out.print(f"[bold]{entry['part']}.{entry['section']} {entry['title']}[/]{details}")
        for offer in entry["offers"]:
            first = " ".join(offer["excerpt"].split())[:160]
            out.print(f"  {offer['source']}: {first}")
    if found:
        out.print(f"Accept one with: kb curate accept {plan.path} PART.SECTION SOURCE --why '...'")


def register(app: typer.Typer) -> None:
    app.add_typer(curate_app, name="curate")
