"""The oracle step: unconsolidated drops + every knowledge file's front matter -> INDEX.md,
SKILL.md, finished plans filed under plans/completed/, drops stamped, one git commit.

A rerun that finds nothing changed stats the workspace, compares one fingerprint with
the one saved under .kb/consolidate/ and stops: it reads no file bodies.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable

from kb.consolidate import cache as cache_mod
from kb.consolidate import gitops, render, scan, stamp
from kb.consolidate.model import DropDone, Finding, IndexFile, PlanDone, Result
from kb.consolidate.plans import COMPLETED, completed_destination, is_finished, resolve_plan_link
from kb.consolidate.refs import KnowledgeIndex, read_is_missing
from kb.consolidate.snippets import SnippetResults, describe, read_results
from kb.errors import KbError
from kb.fsutil import atomic_write_text
from kb.records import now_iso, set_drop_consolidated, with_consolidated
from kb.runner.lock import workspace_lock
from kb.workspace import Workspace

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

Progress = Callable[[str], None]
LIST_LIMIT = 50  # entries per list in a commit message

# Drop statuses that wrote a knowledge file: "partial" has sections marked empty (kb.records.DropRecord).
WRITTEN = ("complete", "partial")


_DIGITS = re.compile(r"(\d+)")


@functools.lru_cache(maxsize=1 << 16)  # the same paths are sorted several times a run
def natural_key(path: str) -> tuple:
    """Sort key that puts ``file-9`` before ``file-10``: text pieces lowercased, digit runs as numbers."""
    pieces: list = _DIGITS.split(path.lower())  # text, digits, text, ...: the digit runs at odd places
    pieces[1::2] = map(int, pieces[1::2])
    return tuple(pieces)


class PlanLinks:
    """``resolve_plan_link`` remembered per value: thousands of drops name a few plans."""

    def __init__(self, plan_files: set[str], moves: dict[str, str]):
        self.plan_files, self.moves, self.seen = plan_files, moves, {}

    def __call__(self, value: str | None) -> str | None:
        if value not in self.seen:
            self.seen[value] = resolve_plan_link(value, self.plan_files, self.moves)
        return self.seen[value]


# -- listing and fingerprint ------------------------------------------------


class Listing:
    """Every file consolidate reads, with its stat: enough to tell whether anything changed.

    With ``stat=False`` knowledge files and drops are listed by name only, for a run that
    reads them all anyway (there is no cache to compare with): each read records the stat
    of what it read, far cheaper from the open file, and off this process on the workers.
    """

    EXTRAS = ("snippets/results.json", "runners/index.md.j2", "runners/skill.md.j2", "INDEX.md", "SKILL.md")

    def __init__(self, root: Path, stat: bool = True):
        self.stat = stat
        self.knowledge = scan.walk(root, "knowledge", stat=stat)
        self.drops = scan.walk_drops(root, stat=stat)
        self.plans = scan.walk(root, "plans", exclude=(COMPLETED,))
        self.completed = scan.walk(root, COMPLETED)
        self.extras = {rel: scan.stat_or_none(root / rel) for rel in self.EXTRAS}

    def fill(self, root: Path) -> None:
        """Stat what no read did (a file that could not be read), so the key describes every file."""
        for group in (self.knowledge, self.drops):
            for rel, stat in group.items():
                if stat is None:
                    group[rel] = scan.stat_or_none(root / rel)

    def key(self) -> str:
        parts: list[tuple[str, Any]] = []
        for group in (self.knowledge, self.drops, self.plans, self.completed, self.extras):
            parts.extend(sorted(group.items()))
        return cache_mod.fingerprint(parts)


# -- reading, with the cache ------------------------------------------------


def _from_cache(listing: dict[str, scan.Stat], cached: dict[str, list]) -> tuple[dict[str, Any], dict[str, list], list[str]]:
    """(infos the cache holds for files whose stat is unchanged, the cache entries to keep,
    the paths to read)."""
    infos: dict[str, Any] = {}
    fresh: dict[str, list] = {}
    misses: list[str] = []
    for rel, stat in listing.items():
        hit = cached.get(rel)
        if hit is not None and stat is not None and tuple(hit[0]) == tuple(stat):
            infos[rel] = hit[1]
            fresh[rel] = [list(stat), hit[1]]
        else:
            misses.append(rel)
    return infos, fresh, misses


def _take_reads(reads: list[scan.Read], listing: dict[str, scan.Stat | None], infos: dict[str, Any], fresh: dict[str, list],
                findings: list[Finding]) -> dict[str, scan.Extra]:
    """Add what was read to ``infos`` and the cache entries, and the stat of what was read
    to ``listing``; returns the reads' extras."""
    extras: dict[str, scan.Extra] = {}
    for rel, info, error, extra, stat in reads:
        if error is not None:
            findings.append(Finding("unreadable", f"{rel}: cannot be read ({error})", path=rel))
            continue
        if stat is None:
            stat = listing[rel]
        else:
            listing[rel] = stat  # the cache describes the content it holds
        infos[rel] = info
        fresh[rel] = [list(stat), info]
        if extra is not None:
            extras[rel] = extra
    return extras


def _misses(listing: dict[str, scan.Stat], cached: dict[str, list]) -> int:
    """How many listed files the cache cannot answer for."""
    return sum(1 for rel, stat in listing.items() if (hit := cached.get(rel)) is None or stat is None or tuple(hit[0]) != tuple(stat))


def _fallback_knowledge(rel: str) -> dict[str, Any]:
    return {"title": PurePosixPath(rel).stem, "summary": "", "sections": [], "sources": 0, "snippets": 0,
            "plan": None, "batch": None, "part": None, "front_matter": False, "edited": False, "sig": None}


# -- warnings -----------------------------------------------------------------


def _plan_findings(root: Path, plans: dict[str, dict | None], index: KnowledgeIndex) -> list[Finding]:
    out: list[Finding] = []
    for rel, info in sorted(plans.items()):
        for part in (info or {}).get("parts", []):
            if part["status"] != "done":
                continue  # a pending PART may still be waiting for files a later PART writes
            for path, line in part["reads"]:
                if read_is_missing(index, path, root):
                    message = f"{rel}:{line}: PART {part['number']} Step 0 reads {path}, which is not in knowledge/"
                    out.append(Finding("missing-read", message, path=rel, plan=rel))
            for ref in part["cite"]:
                for missing in index.missing_cites(ref):
                    alone = re.sub(r"\([^()]*\)", "", ref).strip() == missing  # the ref names just this
                    what = ref if alone else f"{missing} (in \"{ref}\")"
                    message = f"{rel}:{part['line']}: PART {part['number']} cites {what}, which matches no file in knowledge/"
                    out.append(Finding("dangling-cite", message, path=rel, plan=rel))
    return out


def _tree_findings(root: Path, knowledge: dict[str, dict], drops: dict[str, dict]) -> list[Finding]:
    out: list[Finding] = []
    accounted: set[str] = set()
    for rel, drop in sorted(drops.items()):
        target = drop.get("knowledge_file")
        if drop.get("status") not in WRITTEN:
            continue
        if target:
            accounted.add(target)
        if not target:
            out.append(Finding("missing-knowledge-file", f"{rel}: the drop names no knowledge file", path=rel))
        elif target not in knowledge and not (root / target).is_file():
            out.append(Finding("missing-knowledge-file", f"{rel}: its knowledge file {target} does not exist", path=rel))
    for rel in sorted(knowledge, key=natural_key):
        if rel not in accounted:
            out.append(Finding("unaccounted-file", f"{rel}: no drop accounts for this file", path=rel))
    return out


def _duplicate_findings(knowledge: dict[str, dict]) -> list[Finding]:
    signatures = {rel: info.get("sig") for rel, info in knowledge.items() if info.get("sig")}
    if len(signatures) < 2:
        return []
    from kb.consolidate.similar import near_duplicates

    return [
        Finding("near-duplicate", f"{pair.a} and {pair.b} are near-identical (~{round(pair.similarity * 100)}% similar)", path=pair.a)
        for pair in near_duplicates(signatures)
    ]


# -- rendering ----------------------------------------------------------------


def _snippet_status(count: int, results: SnippetResults | None, rel: str) -> tuple[str, dict[str, int]]:
    if results is None or results.problem:
        return (f"{count} {'snippet' if count == 1 else 'snippets'}" if count else "no snippets"), {}
    counts = dict(results.by_file.get(rel) or {})
    validated = sum(counts.values())
    total = max(count, validated)
    if total == 0:
        return "no snippets", counts
    text = f"{total} {'snippet' if total == 1 else 'snippets'}"
    detail = describe(counts)
    unvalidated = total - validated
    if unvalidated:
        detail = f"{detail}, {unvalidated} not validated" if detail else "not validated"
    return f"{text}: {detail}", counts


def _contexts(
    knowledge: dict[str, dict],
    drop_by_target: dict[str, dict],
    plan_files: set[str],
    moves: dict[str, str],
    results: SnippetResults | None,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(totals, INDEX topics by folder, SKILL topics by top-level folder)."""
    by_folder: dict[str, list[IndexFile]] = defaultdict(list)
    plan_link = PlanLinks(plan_files, moves)
    stems: dict[str, str] = {}

    def stem(path: str) -> str:
        if path not in stems:
            stems[path] = PurePosixPath(path).stem
        return stems[path]

    totals = {"files": 0, "topics": 0, "sections": 0, "sources": 0, "snippets": 0, "validation": "", "validated": {},
              "sections_empty": 0}
    for rel in sorted(knowledge, key=natural_key):
        info = knowledge[rel]
        drop = drop_by_target.get(rel) or {}
        plan = info.get("plan") or drop.get("plan")
        part = info.get("part") if info.get("part") is not None else drop.get("part")
        batch = info.get("batch") if info.get("batch") is not None else drop.get("batch")
        plan_path = plan_link(plan)
        status, counts = _snippet_status(int(info.get("snippets") or 0), results, rel)
        folder = rel.rsplit("/", 1)[0]
        entry = IndexFile(
            path=rel,
            link=render.md_link(rel),
            title=info["title"],
            summary=info.get("summary") or "",
            # A section the drop records as empty is marked so in INDEX.md (issue 19).
            sections=[f"{t} (empty)" if t in set(drop.get("sections_empty") or ()) else t for t in info.get("sections") or []],
            sources=int(info.get("sources") or 0),
            snippets=int(info.get("snippets") or 0),
            results=counts,
            snippet_status=status,
            plan=stem(plan_path or plan) if plan else None,
            plan_path=plan_path,
            plan_link=render.md_link(plan_path) if plan_path else None,
            batch=batch,
            part=part,
            edited=bool(info.get("edited")),
        )
        by_folder[folder].append(entry)
        totals["files"] += 1
        totals["sections"] += len(entry.sections)
        totals["sections_empty"] += sum(1 for t in entry.sections if t.endswith(" (empty)"))
        totals["sources"] += entry.sources
        totals["snippets"] += max(entry.snippets, sum(counts.values()))
    if results is not None and not results.problem:
        totals["validated"] = dict(results.totals)
        totals["validation"] = describe(results.totals) or "no results"
    topics = []
    for folder in sorted(by_folder, key=natural_key):
        name = folder[len("knowledge/") :] if folder.startswith("knowledge/") else "(top level)"
        topics.append({"name": name, "path": folder, "link": render.md_link(folder + "/"), "files": by_folder[folder]})
    totals["topics"] = len(topics)
    skill: dict[str, dict[str, Any]] = {}
    for topic in topics:
        top = topic["name"].split("/", 1)[0]
        entry = skill.setdefault(top, {"name": top, "link": render.md_link(f"knowledge/{top}/" if top != "(top level)" else "knowledge/"), "files": 0, "titles": []})
        entry["files"] += len(topic["files"])
        entry["titles"].extend(f.title for f in topic["files"])
    return totals, topics, list(skill.values())


# -- summaries for output and the commit ----------------------------------------


def ranges(numbers: list[int]) -> str:
    """[5, 6, 7, 9] -> "5-7, 9"."""
    nums = sorted(set(n for n in numbers if n is not None))
    out: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(out)


def parts_label(parts: list[int]) -> str:
    """``PART 5`` or ``PARTs 5-8``."""
    return f"PART {ranges(parts)}" if len(set(parts)) == 1 else f"PARTs {ranges(parts)}"


def _merge_pending(old: dict[str, Any] | None, drops: list[DropDone], plans: list[PlanDone], index: bool, skill: bool) -> dict[str, Any]:
    merged = dict(old or {"drops": [], "plans": [], "index": False, "skill": False})
    merged["drops"] = list(merged.get("drops") or []) + [dict(vars(d)) for d in drops]  # flat: no asdict deep copy
    by_path = {p["path"]: p for p in merged.get("plans") or []}
    for plan in plans:
        have = by_path.get(plan.path)
        if have is None:
            by_path[plan.path] = asdict(plan)
        else:
            have["batches"] = sorted(set(have["batches"]) | set(plan.batches))
            have["parts"] = sorted(set(have["parts"]) | set(plan.parts))
            have["drops"] += plan.drops
            have["moved_to"] = plan.moved_to or have.get("moved_to")
    merged["plans"] = list(by_path.values())
    merged["index"] = bool(merged.get("index")) or index
    merged["skill"] = bool(merged.get("skill")) or skill
    return merged


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= LIST_LIMIT:
        return lines
    return lines[:LIST_LIMIT] + [f"- ... and {len(lines) - LIST_LIMIT} more"]


def commit_message(pending: dict[str, Any], changes: list[gitops.Change], warnings: int) -> str:
    """Summary line + body: plans, batches, PARTs, knowledge files added/changed, with counts."""
    drops = pending.get("drops") or []
    plans = pending.get("plans") or []
    k_added, k_changed, k_removed = [], [], []  # one pass over the changes (20,000 in a big run)
    by_code = {"A": k_added, "C": k_added, "M": k_changed, "R": k_changed, "T": k_changed, "D": k_removed}
    for c in changes:
        bucket = by_code.get(c.status)
        if bucket is not None and c.path.startswith("knowledge/") and c.path.endswith(".md"):
            bucket.append(c.path)
    for bucket in (k_added, k_changed, k_removed):
        bucket.sort(key=natural_key)
    moved = [p for p in plans if p.get("moved_to")]
    bits = []
    if drops:
        bits.append(f"{len(drops)} {'drop' if len(drops) == 1 else 'drops'}")
    bits.append(f"{len(k_added)} {'file' if len(k_added) == 1 else 'files'} added, {len(k_changed)} changed")
    if moved:
        bits.append(f"{len(moved)} {'plan' if len(moved) == 1 else 'plans'} completed")
    summary = "kb consolidate: " + ", ".join(bits) if drops or k_added or k_changed or moved else "kb consolidate: refresh INDEX.md and SKILL.md"
    body: list[str] = []
    if plans:
        body.append(f"Plans ({len(plans)}):")
        for plan in sorted(plans, key=lambda p: p["path"]):
            line = f"- {plan['path']}"
            if plan.get("batches"):
                line += f": BATCH {ranges(plan['batches'])}"
            if plan.get("parts"):
                line += f", {parts_label(plan['parts'])} ({plan['drops']} {'drop' if plan['drops'] == 1 else 'drops'})"
            if plan.get("moved_to"):
                line += f"; completed, moved to {plan['moved_to']}"
            body.append(line)
        body.append("")
    loose = [d for d in drops if not d.get("plan")]
    if loose:
        body += [f"Drops without a plan: {len(loose)}", ""]
    failed = [d for d in drops if d.get("status") not in WRITTEN]
    if failed:
        body.append(f"Failed PARTs ({len(failed)}):")
        body += _capped([f"- {d.get('plan') or '?'} PART {d.get('part')}: {d['path']}" for d in failed])
        body.append("")
    for title, paths in (("Knowledge files added", k_added), ("Knowledge files changed", k_changed), ("Knowledge files removed", k_removed)):
        if paths:
            body.append(f"{title} ({len(paths)}):")
            body += _capped([f"- {p}" for p in paths])
            body.append("")
    counts: dict[str, int] = defaultdict(int)
    for change in changes:
        counts[change.path.split("/", 1)[0]] += 1
    body.append("Paths committed: " + ", ".join(f"{top} {n}" for top, n in sorted(counts.items())) + f" ({len(changes)} in all)")
    if drops:
        body.append(f"Drops consolidated: {len(drops)}")
    if warnings:
        body.append(f"Warnings: {warnings} (kb consolidate --json lists them)")
    return summary + "\n\n" + "\n".join(body).rstrip() + "\n"


# -- the step -------------------------------------------------------------------


def consolidate(ws: Workspace, commit: bool = True, now: str | None = None, progress: Progress | None = None) -> Result:
    """Consolidate the workspace's drops; commit the managed paths unless ``commit`` is False."""
    started = time.perf_counter()
    root = ws.root
    say = progress or (lambda _msg: None)
    ctx = None
    if commit:
        ctx = gitops.open_repo(root)
        if ctx is None:
            raise KbError(f"{root} is not inside a git repository: run `git init` there, or pass --no-commit")
    with workspace_lock(ws, "kb consolidate"), _collector_paused():  # the one writer lock run-plan takes too
        # Everything the run builds is local to _locked and gone when the collector resumes:
        # its first pass then walks the result only, not the 300,000 objects of a big run.
        result = _locked(ws, ctx, now, say)
    result.seconds = time.perf_counter() - started
    return result


def _locked(ws: Workspace, ctx: gitops.GitContext | None, now: str | None, say: Progress) -> Result:
    root = ws.root
    stamp.recover(root, _stamp_folder(root))  # a stamp a crash cut short
    # Without a cache every file is read: no stat is worth taking before that (see Listing).
    listing = Listing(root, stat=cache_mod.has_cache(root))
    state = cache_mod.load_state(root)
    if listing.stat and state.key == listing.key() and not (ctx is not None and state.pending):
        return Result(
            workspace=str(root),
            nothing_to_consolidate=True,
            totals=state.totals,
            skill_name=state.skill_name,
            warnings=[Finding.from_dict(w) for w in state.warnings],
            commit_skipped="nothing to consolidate" if ctx is not None else None,
        )
    cached = cache_mod.load_cache(root)
    unread = _misses(listing.knowledge, cached["knowledge"]) + _misses(listing.drops, cached["drops"])
    background: list[gitops.Prestage | gitops.BlobStore | _Finishing] = []
    try:
        with scan.worker_pool(unread) as pool:
            return _consolidate(ws, listing, state, cached, pool, ctx, now or now_iso(), say, background)
    finally:
        _wait_for_git(background, everything=True)  # never leave a `git add` or a flush running


@contextlib.contextmanager
def _collector_paused():
    """Python's cycle collector off for the run, and for the reader processes forked from it.
    With 100,000 new dicts and lists it would walk the whole heap several times (about a
    second for 10,000 files); what consolidate builds are trees, not cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _consolidate(ws: Workspace, listing: Listing, state: cache_mod.State, cached: dict[str, dict[str, list]],
                 pool: ProcessPoolExecutor | None, ctx: gitops.GitContext | None, now: str, say: Progress,
                 background: list) -> Result:
    root = ws.root
    findings: list[Finding] = []
    knowledge, k_cache, k_misses = _from_cache(listing.knowledge, cached["knowledge"])
    drops, d_cache, d_misses = _from_cache(listing.drops, cached["drops"])
    # Files read afresh: about how many git may find new or changed.
    fresh_reads = len(k_misses)
    bulk = fresh_reads + len(d_misses) >= gitops.BULK_MIN
    # With thousands of new files, storing their blobs for the commit is the costliest part of
    # `git add`: the readers make them (see gitpack) and kb writes them as packs.
    blobs = gitops.BlobStore(ctx, ("knowledge", "drops", "plans")) if ctx is not None and bulk else None
    if blobs is not None:
        background.append(blobs)  # its `git ls-files` ends with the run, whatever happens
    packing = blobs is not None and blobs.usable
    # Worker processes store the blobs they make as packs themselves when git holds none of
    # the files they read (a first consolidation: every blob is new); otherwise this process
    # stores only those git does not hold at their path yet.
    pack_dir = str(blobs.pack_dir) if packing and pool is not None and blobs.holds_none([*k_misses, *d_misses]) else None
    plans, p_cache, p_misses = _from_cache(listing.plans, cached["plans"])
    say(f"reading {len(listing.knowledge)} knowledge files")
    # Plans between the two: on worker processes, one parses them while the other starts on the
    # drops, instead of after the last drop while this process waits.
    reads = scan.read_kinds(root, [("knowledge", k_misses, scan.ReadOptions(blobs=packing, pack_dir=pack_dir)),
                                   ("plans", p_misses, scan.PLAIN),
                                   ("drops", d_misses, scan.ReadOptions(blobs=packing, stamp=now, pack_dir=pack_dir))], pool)
    k_extra = _take_reads(next(reads), listing.knowledge, knowledge, k_cache, findings)
    for rel in listing.knowledge:
        if rel not in knowledge:
            knowledge[rel] = _fallback_knowledge(rel)
    if packing:  # written while the workers read the drops: this process only waits on them then
        blobs.store_in_background({rel: extra.blob for rel, extra in k_extra.items() if extra.blob is not None}, root,
                                  unread=[*listing.plans, *listing.completed])
    plan_reads = next(reads)
    say(f"reading {len(listing.drops)} drops")
    d_extra = _take_reads(next(reads), listing.drops, drops, d_cache, findings)
    reads.close()
    if not listing.stat:
        listing.fill(root)
    say(f"reading {len(listing.plans)} plans")
    _take_reads(plan_reads, listing.plans, plans, p_cache, findings)
    results = read_results(root)
    if results is not None and results.problem:
        findings.append(Finding("unreadable", results.problem, path="snippets/results.json"))

    new_drops = sorted((rel for rel, d in drops.items() if not d.get("consolidated")), key=natural_key)
    plan_files = set(listing.plans) | set(listing.completed)

    # Finished plans move to completed/ (every PART done; their drops are consolidated now).
    moves: dict[str, str] = {}
    for rel in sorted(listing.plans):
        if not is_finished(plans.get(rel)):
            continue
        dest = completed_destination(rel)
        if dest in listing.completed or (root / dest).exists():
            findings.append(Finding("plan-not-moved", f"{rel}: finished, but {dest} already exists; left in place", path=rel, plan=rel))
            continue
        moves[rel] = dest

    # What each new drop brings, grouped by plan.
    earlier_targets = {d.get("knowledge_file") for rel, d in drops.items() if d.get("consolidated") and d.get("status") in WRITTEN}
    done: list[DropDone] = []
    by_plan: dict[str, PlanDone] = {}
    drop_plan = PlanLinks(plan_files, {})
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

    # New drops or moves: this run commits. With many new files the commit's `git add`
    # costs most, so it starts now, in the background, for the paths consolidate only
    # reads (knowledge/, snippets/); the paths it writes follow once they are written.
    early = ctx is not None and bool(new_drops or moves)
    packed = early and packing
    if early:
        gitops.check_committable(ctx)  # before writing anything
        if packed:
            stamped = {rel: d_extra[rel].blob for rel in new_drops if rel in d_extra and d_extra[rel].blob is not None}
            blobs.store_in_background(stamped, root)
        if bulk:  # `git add` once kb's packs are in place
            first = blobs.wait if packed else None
            background.append(gitops.Prestage(ctx, root, ("knowledge", "snippets"), bulk=not packed, first=first))

    # INDEX.md and SKILL.md, rendered before anything is written: a broken template changes nothing.
    say("rendering INDEX.md and SKILL.md")
    drop_by_target: dict[str, dict] = {}
    for rel in sorted(drops, key=lambda r: (str(drops[r].get("created") or ""), r)):
        d = drops[rel]
        if d.get("status") in WRITTEN and d.get("knowledge_file"):
            drop_by_target[d["knowledge_file"]] = d
    totals, topics, skill_topics = _contexts(knowledge, drop_by_target, plan_files, moves, results)
    index_block = render.render(render.load_template(root, "index"), {"totals": totals, "topics": topics})
    old_index = render.read_text_exact(ws.index_path)
    new_index = render.splice(old_index, index_block, render.INDEX_MARKERS, render.INDEX_HEAD, "INDEX.md")
    description = render.build_description(skill_topics, totals["files"])
    old_skill = render.read_text_exact(ws.skill_path)
    skill_block = render.render(
        render.load_template(root, "skill"),
        {"totals": totals, "topics": skill_topics, "description": description},
    )
    new_skill, skill_name = render.render_skill_file(old_skill, skill_block, root.name, description)
    index_changed = new_index != old_index
    skill_changed = new_skill != old_skill

    nothing = not new_drops and not moves and not index_changed and not skill_changed
    will_commit = ctx is not None and (not nothing or bool(state.pending))
    if will_commit and not early:
        gitops.check_committable(ctx)  # before writing anything
    applying = None
    late: gitops.Prestage | None = None
    if not nothing:
        # Remember what is being consolidated before touching anything: if this run dies
        # half-way, the next one still commits it.
        state.pending = _merge_pending(state.pending, done, plan_done, index_changed, skill_changed)
        state.key = None
        cache_mod.save_state(root, state)
        say(f"stamping {len(new_drops)} drops")
        for work in background:
            if isinstance(work, gitops.Prestage):
                # Writing a pack holds the GIL in stretches, and each of stamping's 10,000
                # stat calls would wait one out; the `git add` after it is a process.
                work.wait_first()
        prepared = {rel: (listing.drops[rel], extra.stamped) for rel, extra in d_extra.items() if extra.stamped}
        journaled = _stamp_drops(root, new_drops, now, prepared)
        if journaled and pool is not None:
            # Rewriting thousands of drops is system calls: the workers share it while this
            # process works out the warnings. Making them durable (one filesystem flush)
            # waits on the disk; nothing else does, so that runs alongside the commit.
            folder = _stamp_folder(root)
            shards = scan.pool_size()
            rewriting = [pool.submit(stamp.rewrite_from_journal, root, folder, i, shards) for i in range(shards)]
            applying = (rewriting, stamp.journal_paths(root, journaled))
        elif journaled:
            stamp.apply_journal(root, _stamp_folder(root))
    if pool is not None and applying is None:
        _release(pool)

    # Warnings: about the whole tree, so a rerun reports the same ones.
    index = KnowledgeIndex(knowledge)
    findings += _plan_findings(root, plans, index)
    findings += _tree_findings(root, knowledge, drops)
    say("checking plans, drops and near-duplicate files")
    findings += _duplicate_findings(knowledge)
    findings.sort(key=Finding.sort_key)
    totals["warnings"] = len(findings)

    result = Result(
        workspace=str(root),
        nothing_to_consolidate=nothing,
        drops=done,
        plans=plan_done,
        index_changed=index_changed,
        skill_changed=skill_changed,
        skill_name=skill_name,
        totals=totals,
        warnings=findings,
    )
    moved_plans = set(moves)
    kept_warnings = [f.to_dict() for f in findings if f.plan not in moved_plans]
    if not nothing:
        # With a commit to come, a rename is all a move needs: the commit's `git add -A` stages
        # it exactly as `git mv` would (git records no renames), without waiting for the
        # background add. Without one, `git mv` puts the move in the index.
        mover = _repo_for_moves(root) if ctx is None and moves else None
        for src, dest in moves.items():
            gitops.move(mover, root, src, dest)
        if index_changed:
            atomic_write_text(ws.index_path, new_index)
        if skill_changed:
            atomic_write_text(ws.skill_path, new_skill)
        written: dict[str, scan.Stat] = {}  # path -> its stat once stamped, from the workers that wrote it
        if applying is not None:
            rewriting, paths = applying
            for shard in rewriting:
                written.update(shard.result())  # every drop is stamped (in the page cache)
            background.append(_Finishing(pool.submit(stamp.finish_journal, root, _stamp_folder(root), paths)))
            _release(pool)
        if early and bulk:
            _wait_for_git(background)  # one `git add` at a time
            late = gitops.Prestage(ctx, root, ("drops", "plans", "INDEX.md", "SKILL.md"), bulk=not packed)
            background.append(late)
        say("recording the new state")
        # The cache and the fingerprint must describe what kb just wrote as it was written (drops
        # stamped, plans moved, INDEX.md and SKILL.md). Every other file keeps the stat it was
        # read with: one that someone changed while we ran no longer matches it, so the next
        # run reads it again instead of trusting the fingerprint.
        base = os.fspath(root)
        for rel in new_drops:
            path = os.path.join(base, rel)
            stat = written.get(path) or scan.stat_or_none(path)
            entry = d_cache.get(rel)
            if stat is None or entry is None:
                listing.drops.pop(rel, None)
                d_cache.pop(rel, None)
                continue
            listing.drops[rel] = stat
            d_cache[rel] = [list(stat), {**entry[1], "consolidated": now}]
        for src, dest in moves.items():
            listing.plans.pop(src, None)
            p_cache.pop(src, None)
            stat = scan.stat_or_none(root / dest)
            if stat is not None:
                listing.completed[dest] = stat
        listing.extras = {rel: scan.stat_or_none(root / rel) for rel in Listing.EXTRAS}
    state.key = listing.key()
    state.warnings = kept_warnings
    state.totals = totals
    state.skill_name = skill_name
    cache_mod.save_cache(root, {"knowledge": k_cache, "drops": d_cache, "plans": p_cache})
    if not will_commit:
        cache_mod.save_state(root, state)
        if ctx is not None:
            result.commit_skipped = "nothing to consolidate"
        return result
    # The state is saved once, after the commit. Should the commit fail, the state saved
    # before the stamp (what is pending, no fingerprint to trust) makes the next run commit.
    say("committing")
    _wait_for_git(background)
    # What kb wrote (drops, plans, INDEX.md, SKILL.md) was staged by the `git add` started
    # after its last write: no second add (see stage_managed). knowledge/ is added again, so
    # a file a person changed meanwhile is committed as it is now.
    staged = frozenset(late.specs) if late is not None and late.ok else frozenset()
    changes = gitops.stage_managed(ctx, root, expected=0 if packed else len(new_drops) + fresh_reads + len(moves) + 2,
                                   staged=staged)
    if not changes:
        result.commit_skipped = "the managed paths already match HEAD"
    else:
        message = commit_message(state.pending, changes, len(findings))
        sha = gitops.commit_managed(ctx, root, message, root / ".kb" / "consolidate" / "COMMIT_MSG")
        result.commit = {"sha": sha, "summary": message.split("\n", 1)[0], "files": len(changes)}
    state.pending = None
    cache_mod.save_state(root, state)
    return result


def _release(pool: ProcessPoolExecutor) -> None:
    """Nothing more will be submitted: the workers exit once their last task is done. Exiting
    takes them a few tenths of a second (their memory is torn down); begun now, that overlaps
    the rest of the run instead of ending it (the pool's context still joins them)."""
    pool.shutdown(wait=False)


class _Finishing:
    """A stamp's flush and journal removal, running in a worker: waited for with the git work."""

    def __init__(self, future):
        self.future = future

    def wait(self) -> None:
        self.future.result()


def _wait_for_git(background: list, everything: bool = False) -> None:
    """Wait for the git work in ``background`` (and for the stamp's flush, with ``everything``)."""
    for work in background:
        if everything or not isinstance(work, _Finishing):
            work.wait()


def _stamp_folder(root: Path) -> Path:
    return root / ".kb" / "consolidate"


def _stamp_drops(root: Path, drops: list[str], when: str, prepared: dict[str, tuple[scan.Stat, bytes]]) -> list[str]:
    """Record ``consolidated: when`` in each drop: older drops (no such line yet) one by one
    now; kb's drops in one journal (see stamp), applied by the caller. ``prepared``: stamped
    bytes the readers made, with the file's stat then; used while the file still has that
    stat. Returns the drops the journal holds (none when none was written)."""
    batch: dict[str, bytes] = {}
    base = os.fspath(root)
    for rel in drops:
        path = os.path.join(base, rel)
        ready = prepared.get(rel)
        if ready is not None and scan.stat_or_none(path) == ready[0]:
            batch[rel] = ready[1]
            continue
        with open(path, "rb") as handle:
            stamped = with_consolidated(handle.read().decode("utf-8", errors="replace"), when)
        if stamped is None:
            set_drop_consolidated(Path(path), when)
        else:
            batch[rel] = stamped.encode("utf-8")
    return list(batch) if stamp.write_journal(_stamp_folder(root), batch) else []


def _repo_for_moves(root: Path) -> gitops.GitContext | None:
    """With --no-commit a tracked plan still moves with git mv (history follows it)."""
    try:
        return gitops.open_repo(root)
    except KbError:
        return None
