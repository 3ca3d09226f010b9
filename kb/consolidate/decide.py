"""The oracle's decisions, apart from how the workspace is read and written.

:func:`decide` takes what was read (:class:`Seen`: knowledge files' and drops' infos, plans,
snippet results, INDEX.md and SKILL.md as they are, the templates, what earlier runs left
pending) and returns the run's plan (:class:`Decision`): which drops are new and what each
brings, which plans are finished and move, the new INDEX.md and SKILL.md, the warnings, the
totals, and what the commit will describe. No files, no git, no processes: the engine
(kb.consolidate.engine) reads, applies and commits around it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable

from kb.consolidate import findings as checks
from kb.consolidate import index_context, render
from kb.consolidate.message import commit_message
from kb.consolidate.model import WRITTEN, DropDone, Finding, PlanDone
from kb.consolidate.plans import completed_destination, is_finished
from kb.consolidate.refs import KnowledgeIndex
from kb.consolidate.snippets import SnippetResults
from kb.errors import KbError


@dataclass
class Seen:
    """What the engine read: everything the oracle decides on."""

    knowledge: dict[str, dict]  # knowledge/... path -> what INDEX.md needs of it (see scan)
    drops: dict[str, dict]  # drops/... path -> the drop's record, reduced
    plans: dict[str, dict | None]  # plans/... (not completed/) -> the plan, reduced (None: no plan)
    completed: set[str]  # the files under plans/completed/
    index_template: render.TemplateSource
    skill_template: render.TemplateSource
    old_index: str | None = None  # INDEX.md as it is (None: there is none)
    old_skill: str | None = None
    name_hint: str = "knowledge-base"  # the workspace folder's name: SKILL.md's name when it has none
    results: SnippetResults | None = None  # the snippet validator's last results
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why it could not be read
    pending: dict[str, Any] | None = None  # what earlier runs consolidated and did not commit
    exists: Callable[[str], bool] = lambda _rel: False  # whether a workspace path exists (file or folder)
    is_file: Callable[[str], bool] = lambda _rel: False  # whether a workspace path is a file
    knowledge_prefix: str = "knowledge/"  # the layout's knowledge root ("" where it is the workspace)
    knowledge_listed: set[str] | None = None  # every knowledge file listed, read or not (None: those under the prefix)

    def is_knowledge(self, rel: str) -> bool:
        """Whether a listed path (an unreadable one, say) is a knowledge file."""
        return rel in self.knowledge_listed if self.knowledge_listed is not None else rel.startswith(self.knowledge_prefix)


@dataclass
class Decision:
    """The run's plan: what to stamp, move and write, what to say, what to commit."""

    new_drops: list[str]  # drops not consolidated before, in natural order
    drops: list[DropDone]
    plans: list[PlanDone]
    moves: dict[str, str]  # finished plan -> its place under plans/completed/
    index_text: str
    index_changed: bool
    skill_text: str
    skill_changed: bool
    skill_name: str
    totals: dict[str, Any]
    findings: list[Finding]
    errors: list[Finding]  # broken knowledge files (see broken_files)
    pending: dict[str, Any] | None  # what the next commit describes: this run merged with earlier ones
    stamp: list[str] = field(default_factory=list)  # drops kb may stamp when it commits: read with confidence (see confident)
    due: list[str] = field(default_factory=list)  # drops a --write-only run consolidated without stamping them
    knowledge_prefix: str = "knowledge/"  # the layout's knowledge root, as the commit message names files under it

    @property
    def nothing(self) -> bool:
        """Nothing to stamp, move or write."""
        return not self.new_drops and not self.moves and not self.index_changed and not self.skill_changed and not self.due

    @property
    def wants_commit(self) -> bool:
        """Whether a commit is due (when one may be made): this run's work, or an earlier run's."""
        return not self.nothing or bool(self.pending)

    def kept_warnings(self) -> list[dict[str, Any]]:
        """The warnings a no-op rerun repeats: not those about a plan this run moves."""
        return [f.to_dict() for f in self.findings if f.plan not in self.moves]

    def commit_message(self, changes: list) -> str:
        """The commit's message, given what git found staged (kb.consolidate.gitops.Change)."""
        return commit_message(self.pending or {}, changes, len(self.findings), self.knowledge_prefix)


def decide(seen: Seen, strict: bool = False) -> Decision:
    """The oracle: what this run does with what was read. ``strict``: refuse (KbError) to go
    on with broken knowledge files, before anything is written."""
    errors = broken_files(seen)
    if strict and errors:
        shown = "; ".join(e.message for e in errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        raise KbError(f"{len(errors)} broken knowledge {'file' if len(errors) == 1 else 'files'} ({shown}): "
                      "fix them, or run without --strict to index them as they are (nothing was written)")
    findings = [Finding("unreadable", f"{rel}: cannot be read ({error})", path=rel) for rel, error in seen.unreadable.items()]
    knowledge = dict(seen.knowledge)
    for rel in seen.unreadable:
        if seen.is_knowledge(rel):
            knowledge[rel] = fallback_knowledge(rel)  # listed by its name, so INDEX.md still links it
    results = seen.results
    if results is not None and results.problem:
        findings.append(Finding("unreadable", results.problem, path="snippets/results.json"))

    new_drops = sorted((rel for rel, d in seen.drops.items() if not d.get("consolidated")), key=index_context.natural_key)
    due = sorted((rel for rel, d in seen.drops.items() if d.get("stamp_due")), key=index_context.natural_key)
    plan_files = set(seen.plans) | set(seen.completed)
    moves, not_moved = plan_moves(seen)
    findings += not_moved
    done, plan_done = what_drops_bring(seen.drops, new_drops, plan_files, moves)

    totals, topics, skill_topics = index_context.build(knowledge, drops_by_target(seen.drops), plan_files, moves, results,
                                                       seen.knowledge_prefix)
    index_block = render.render(seen.index_template, {"totals": totals, "topics": topics})
    new_index = render.splice(seen.old_index, index_block, render.INDEX_MARKERS, render.INDEX_HEAD, "INDEX.md")
    description = render.build_description(skill_topics, totals["files"])
    skill_block = render.render(seen.skill_template, {"totals": totals, "topics": skill_topics, "description": description})
    new_skill, skill_name = render.render_skill_file(seen.old_skill, skill_block, seen.name_hint, description)

    # Warnings: about the whole tree, so a rerun reports the same ones.
    findings += [_moved(f, moves) for f in checks.plan_findings(seen.plans, KnowledgeIndex(knowledge, seen.knowledge_prefix), seen.exists)]
    findings += checks.tree_findings(knowledge, seen.drops, seen.is_file)
    findings += checks.duplicate_findings(knowledge)
    findings.sort(key=Finding.sort_key)
    totals["warnings"] = len(findings)

    decision = Decision(
        new_drops=new_drops, drops=done, plans=plan_done, moves=moves,
        index_text=new_index, index_changed=new_index != seen.old_index,
        skill_text=new_skill, skill_changed=new_skill != seen.old_skill, skill_name=skill_name,
        totals=totals, findings=findings, errors=errors, pending=seen.pending, knowledge_prefix=seen.knowledge_prefix,
        stamp=[rel for rel in sorted([*new_drops, *due], key=index_context.natural_key) if confident(seen.drops[rel], seen.is_file)],
        due=due,
    )
    if not decision.nothing:
        decision.pending = merge_pending(seen.pending, done, plan_done, decision.index_changed, decision.skill_changed)
    return decision


def confident(drop: dict[str, Any], is_file: Callable[[str], bool]) -> bool:
    """Whether kb may write a stamp into a drop: one kb wrote (it has front matter), or one in
    the older form whose knowledge file and creation time were both read (the file exists).
    kb never writes back a misread; a drop it is unsure of stays as the person wrote it."""
    if drop.get("front_matter", True):
        return True
    target = drop.get("knowledge_file")
    return bool(target) and bool(drop.get("created")) and is_file(target)


_FIRST_LINE = re.compile(r"\bline (\d+), column \d+")


def broken_files(seen: Seen) -> list[Finding]:
    """Knowledge files that are broken, each with where and why: not valid UTF-8, front matter
    never closed (both found by the readers), or front matter that could not be read."""
    out = [Finding("broken-file", problem, path=rel)
           for rel, info in seen.knowledge.items() for problem in info.get("problems") or ()]
    for rel, error in seen.unreadable.items():
        if seen.is_knowledge(rel):
            line = _FIRST_LINE.search(error)  # a YAML error's marks are the file's lines (see scan)
            where = f"{rel}:{line.group(1)}" if line else rel
            out.append(Finding("broken-file", f"{where}: the front matter cannot be read ({' '.join(error.split())})", path=rel))
    return sorted(out, key=lambda f: (index_context.natural_key(f.path or ""), f.message))


def fallback_knowledge(rel: str) -> dict[str, Any]:
    """What INDEX.md shows of a knowledge file that could not be read: its name."""
    return {"title": PurePosixPath(rel).stem, "summary": "", "sections": [], "sources": 0, "snippets": 0,
            "plan": None, "batch": None, "part": None, "front_matter": False, "edited": False, "sig": None}


def _moved(finding: Finding, moves: dict[str, str]) -> Finding:
    """A warning about a plan this run files under plans/completed/ names the plan where it now is
    (``plan`` keeps the old path: a no-op rerun leaves out the warnings of a plan it moved)."""
    dest = moves.get(finding.plan or "")
    if dest is None:
        return finding
    message = dest + finding.message[len(finding.plan):] if finding.message.startswith(finding.plan) else finding.message
    return Finding(finding.kind, message, path=dest if finding.path == finding.plan else finding.path, plan=finding.plan)


def plan_moves(seen: Seen) -> tuple[dict[str, str], list[Finding]]:
    """Finished plans (every PART done; their drops are consolidated now) -> plans/completed/,
    and a warning for each that cannot move because its destination is taken."""
    moves: dict[str, str] = {}
    not_moved: list[Finding] = []
    for rel in sorted(seen.plans):
        if not is_finished(seen.plans.get(rel)) or not rel.startswith("plans/"):
            continue  # a plan kept elsewhere (an adopted layout) stays where the person keeps it
        dest = completed_destination(rel)
        if dest in seen.completed or seen.exists(dest):
            not_moved.append(Finding("plan-not-moved", f"{rel}: finished, but {dest} already exists; left in place", path=rel, plan=rel))
            continue
        moves[rel] = dest
    return moves, not_moved


def what_drops_bring(drops: dict[str, dict], new_drops: list[str], plan_files: set[str],
                     moves: dict[str, str]) -> tuple[list[DropDone], list[PlanDone]]:
    """Each new drop's change (a knowledge file added or changed, or a failed PART), and what
    each plan gained (batches, PARTs, drops, its move)."""
    earlier_targets = {d.get("knowledge_file") for d in drops.values() if d.get("consolidated") and d.get("status") in WRITTEN}
    done: list[DropDone] = []
    by_plan: dict[str, PlanDone] = {}
    drop_plan = index_context.PlanLinks(plan_files, {})
    for rel in new_drops:
        d = drops[rel]
        plan_rel = drop_plan(d.get("plan")) or d.get("plan")
        target = d.get("knowledge_file")
        change = "failed" if d.get("status") not in WRITTEN else ("changed" if target in earlier_targets else "added")
        done.append(DropDone(rel, plan_rel, d.get("batch"), d.get("part"), target, d.get("status") or "complete", change))
        if plan_rel:
            entry = by_plan.setdefault(plan_rel, PlanDone(plan_rel))
            entry.drops += 1
            if d.get("batch") is not None and d["batch"] not in entry.batches:
                entry.batches.append(d["batch"])
            if d.get("part") is not None and d["part"] not in entry.parts:
                entry.parts.append(d["part"])
    for src, dest in moves.items():
        by_plan.setdefault(src, PlanDone(src)).moved_to = dest
    plan_done = sorted(by_plan.values(), key=lambda p: p.path)
    for entry in plan_done:
        entry.batches.sort()
        entry.parts.sort()
    return done, plan_done


def drops_by_target(drops: dict[str, dict]) -> dict[str, dict]:
    """Knowledge file -> the latest complete drop that wrote it (INDEX.md's plan and PART where
    the file's front matter is silent)."""
    out: dict[str, dict] = {}
    for rel in sorted(drops, key=lambda r: (str(drops[r].get("created") or ""), r)):
        d = drops[rel]
        if d.get("status") in WRITTEN and d.get("knowledge_file"):
            out[d["knowledge_file"]] = d
    return out


def merge_pending(old: dict[str, Any] | None, drops: list[DropDone], plans: list[PlanDone], index: bool, skill: bool) -> dict[str, Any]:
    """What the next commit describes: what earlier runs left uncommitted, plus this run. A
    drop met again (a run that died before stamping it) counts once, as this run saw it."""
    merged = dict(old or {"drops": [], "plans": [], "index": False, "skill": False})
    by_drop = {d["path"]: d for d in merged.get("drops") or []}
    by_drop.update((d.path, dict(vars(d))) for d in drops)  # flat: no asdict deep copy
    merged["drops"] = list(by_drop.values())
    by_path = {p["path"]: p for p in merged.get("plans") or []}
    for plan in plans:
        have = by_path.get(plan.path)
        if have is None:
            by_path[plan.path] = asdict(plan)
        else:
            have["batches"] = sorted(set(have["batches"]) | set(plan.batches))
            have["parts"] = sorted(set(have["parts"]) | set(plan.parts))
            have["moved_to"] = plan.moved_to or have.get("moved_to")
    drops_per_plan = Counter(d.get("plan") for d in merged["drops"])
    for entry in by_path.values():
        entry["drops"] = drops_per_plan.get(entry["path"], 0)
    merged["plans"] = list(by_path.values())
    merged["index"] = bool(merged.get("index")) or index
    merged["skill"] = bool(merged.get("skill")) or skill
    return merged
