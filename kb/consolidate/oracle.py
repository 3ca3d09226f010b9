"""The oracle step: unconsolidated drops + every knowledge file's front matter -> INDEX.md,
SKILL.md, finished plans filed under plans/completed/, drops stamped, one git commit.

A run is four calls: the engine reads the workspace, the oracle decides (kb.consolidate.decide:
plain data in and out), the engine applies the decision and commits it. A rerun that finds
nothing changed stats the workspace, compares one fingerprint with the one saved under
.kb/consolidate/ and stops: it reads no file bodies.
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import Callable

from kb.consolidate import cache as cache_mod
from kb.consolidate import engine, gitops
from kb.consolidate.decide import Decision, decide
from kb.consolidate.listing import listing_unchanged
from kb.consolidate.model import Finding, Result
from kb.errors import KbError
from kb.records import now_iso
from kb.runner.lock import workspace_lock
from kb.workspace import Workspace

Progress = Callable[[str], None]


def consolidate(ws: Workspace, commit: bool = True, now: str | None = None, progress: Progress | None = None,
                strict: bool = False, dry_run: bool = False) -> Result:
    """Consolidate the workspace's drops; commit the managed paths unless ``commit`` is False.
    ``strict``: refuse to go on (KbError, nothing written) when a knowledge file is broken.
    ``dry_run``: decide, write no file of the tree (previews of INDEX.md and SKILL.md go under
    .kb/consolidate/preview/), commit nothing, and leave no state a later run would trust."""
    started = time.perf_counter()
    root = ws.root
    say = progress or (lambda _msg: None)
    ctx = None
    if commit and not dry_run:
        ctx = gitops.open_repo(root)
        if ctx is None:
            raise KbError(f"{root} is not inside a git repository: run `git init` there, or pass --write-only (write, commit nothing)")
    with workspace_lock(ws, "kb consolidate"), _collector_paused():  # the one writer lock run-plan takes too
        # Everything the run builds is local to _locked and gone when the collector resumes:
        # its first pass then walks the result only, not the 300,000 objects of a big run.
        result = _dry(ws, now or now_iso(), say, strict) if dry_run else _locked(ws, ctx, now or now_iso(), say, strict)
    result.seconds = time.perf_counter() - started
    return result


def _locked(ws: Workspace, ctx: gitops.GitContext | None, now: str, say: Progress, strict: bool) -> Result:
    engine.recover(ws.root)  # a stamp a crash cut short
    return _run(ws, ctx, now, say, strict, dry=False)


def _dry(ws: Workspace, now: str, say: Progress, strict: bool) -> Result:
    """A dry look: what a run would do, with no file of the tree written. A stamp a crash cut
    short stays for the next real run; nothing is cached or recorded, so that run decides afresh."""
    return _run(ws, None, now, say, strict, dry=True)


def _run(ws: Workspace, ctx: gitops.GitContext | None, now: str, say: Progress, strict: bool, *, dry: bool) -> Result:
    """Read the tree, decide; then (unless ``dry``) write what was decided and commit it."""
    state = cache_mod.load_state(ws.root)
    listing, unchanged = listing_unchanged(ws.root, state, ws)
    # Drops written but not yet committed (state.pending) matter to a run that commits and to a dry look.
    waiting = state.pending and (dry or ctx is not None)
    if unchanged and not waiting and not (strict and state.errors):
        return _unchanged(ws, state, ctx)
    cached = cache_mod.load_cache(ws.root)
    commit = skipped = None
    with engine.worker_pool(listing, cached) as pool:
        io = engine.Engine(ws, listing, state, cached, pool, ctx, now, say)
        try:
            seen = io.read()
            say("rendering INDEX.md and SKILL.md, checking the tree")
            decision = decide(seen, strict)
            if not dry:
                io.apply(decision)
                commit, skipped = io.commit(decision)
        finally:
            io.close()
    result = _result(ws, decision, commit, skipped)
    if dry:
        result.dry_run = True
        result.previews = engine.write_previews(ws, decision)
    return result


def _unchanged(ws: Workspace, state: cache_mod.State, ctx: gitops.GitContext | None) -> Result:
    """Nothing changed since the last run: what it found still stands."""
    return Result(
        workspace=str(ws.root),
        nothing_to_consolidate=True,
        totals=state.totals,
        skill_name=state.skill_name,
        warnings=[Finding.from_dict(w) for w in state.warnings],
        errors=[Finding.from_dict(e) for e in state.errors],
        commit_skipped="nothing to consolidate" if ctx is not None else None,
    )


def _result(ws: Workspace, decision: Decision, commit: dict | None, skipped: str | None) -> Result:
    return Result(
        workspace=str(ws.root),
        nothing_to_consolidate=decision.nothing,
        drops=decision.drops,
        plans=decision.plans,
        index_changed=decision.index_changed,
        skill_changed=decision.skill_changed,
        skill_name=decision.skill_name,
        totals=decision.totals,
        warnings=decision.findings,
        errors=decision.errors,
        commit=commit,
        commit_skipped=skipped,
    )


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
