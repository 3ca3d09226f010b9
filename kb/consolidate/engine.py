"""consolidate's I/O engine: it reads the workspace for the oracle, applies the oracle's
decisions and commits them, as fast as it can, and decides nothing itself.

- **read**: list the files (see listing: stats, the fingerprint a no-op rerun compares), take what the
  cache still answers for, read the rest (on worker processes for thousands of files;
  the readers also stamp each new drop's bytes and, where a commit follows, make its git
  blob), and hand the oracle a :class:`kb.consolidate.decide.Seen`.
- **apply**: save what is about to be consolidated (so a crash still commits it), stamp the
  new drops (one journal, see stamp), move the finished plans, write INDEX.md and SKILL.md,
  and record the new state and cache.
- **commit**: stage kb's paths and commit only them (see gitops). With many new files the
  git work starts early, in the background: kb's own packs of the blobs (see gitpack) and a
  ``git add`` of the paths consolidate only reads, then of those it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from kb.consolidate import cache as cache_mod
from kb.consolidate import gitops, render, scan, stamp
from kb.consolidate import listing as listing_mod
from kb.consolidate.decide import Decision, Seen
from kb.consolidate.listing import Listing
from kb.consolidate.snippets import read_results
from kb.errors import KbError
from kb.fsutil import atomic_write_text
from kb.records import set_drop_consolidated, with_consolidated
from kb.workspace import Workspace

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

Progress = Callable[[str], None]


# -- the engine ----------------------------------------------------------------


class Engine:
    """One consolidation's I/O: :meth:`read`, then :meth:`apply` and :meth:`commit` of the
    oracle's decision. ``pool``: worker processes (None for a small run); ``ctx``: the git
    repository to commit in (None with --no-commit). :meth:`close` waits for whatever git
    or flush work still runs in the background."""

    def __init__(self, ws: Workspace, listing: Listing, state: cache_mod.State, cached: dict[str, dict[str, list]],
                 pool: ProcessPoolExecutor | None, ctx: gitops.GitContext | None, now: str, say: Progress):
        self.ws, self.root, self.listing, self.state, self.pool, self.ctx = ws, ws.root, listing, state, pool, ctx
        self.now, self.say = now, say
        self.knowledge, self.k_cache, self.k_misses = listing_mod.from_cache(listing.knowledge, cached["knowledge"])
        self.drops, self.d_cache, self.d_misses = listing_mod.from_cache(listing.drops, cached["drops"])
        self.plans, self.p_cache, self.p_misses = listing_mod.from_cache(listing.plans, cached["plans"])
        self.d_extra: dict[str, scan.Extra] = {}
        self.background: list[gitops.Prestage | gitops.BlobStore | _Finishing] = []
        self.late: gitops.Prestage | None = None
        # Files read afresh: about how many git may find new or changed.
        self.fresh_reads = len(self.k_misses)
        # The early `git add` and kb's own packs know kb's folders only: an adopted layout goes without.
        self.bulk = self.fresh_reads + len(self.d_misses) >= gitops.BULK_MIN and ws.default_layout
        # With thousands of new files, storing their blobs for the commit is the costliest part of
        # `git add`: the readers make them (see gitpack) and kb writes them as packs.
        self.blobs = gitops.BlobStore(ctx, ("knowledge", "drops", "plans")) if ctx is not None and self.bulk else None
        if self.blobs is not None:
            self.background.append(self.blobs)  # its `git ls-files` ends with the run, whatever happens
        self.packing = self.blobs is not None and self.blobs.usable
        self.packed = False  # whether this run's new blobs went into kb's packs

    def close(self) -> None:
        """Never leave a `git add` or a flush running."""
        _wait_for_git(self.background, everything=True)

    # -- read -------------------------------------------------------------------

    def read(self) -> Seen:
        """Everything the oracle decides on."""
        root, listing, say = self.root, self.listing, self.say
        unreadable: dict[str, str] = {}
        # Worker processes store the blobs they make as packs themselves when git holds none of
        # the files they read (a first consolidation: every blob is new); otherwise this process
        # stores only those git does not hold at their path yet.
        pack_dir = (str(self.blobs.pack_dir) if self.packing and self.pool is not None
                    and self.blobs.holds_none([*self.k_misses, *self.d_misses]) else None)
        say(f"reading {len(listing.knowledge)} knowledge files")
        # Plans between the two: on worker processes, one parses them while the other starts on the
        # drops, instead of after the last drop while this process waits.
        reads = scan.read_kinds(root, [("knowledge", self.k_misses, scan.ReadOptions(blobs=self.packing, pack_dir=pack_dir)),
                                       ("plans", self.p_misses, scan.PLAIN),
                                       ("drops", self.d_misses, scan.ReadOptions(blobs=self.packing, stamp=self.now, pack_dir=pack_dir,
                                                                                 knowledge_root=self.ws.knowledge_prefix.rstrip("/") or "."))],
                                 self.pool)
        k_extra = listing_mod.take_reads(next(reads), listing.knowledge, self.knowledge, self.k_cache, unreadable)
        if self.packing:  # written while the workers read the drops: this process only waits on them then
            self.blobs.store_in_background({rel: extra.blob for rel, extra in k_extra.items() if extra.blob is not None}, root,
                                           unread=[*listing.plans, *listing.completed])
        plan_reads = next(reads)
        say(f"reading {len(listing.drops)} drops")
        self.d_extra = listing_mod.take_reads(next(reads), listing.drops, self.drops, self.d_cache, unreadable)
        reads.close()
        if not listing.stat:
            listing.fill(root)
        say(f"reading {len(listing.plans)} plans")
        listing_mod.take_reads(plan_reads, listing.plans, self.plans, self.p_cache, unreadable)
        return Seen(
            knowledge=self.knowledge, drops=self.drops, plans=self.plans, completed=set(listing.completed),
            index_template=render.load_template(root, "index"), skill_template=render.load_template(root, "skill"),
            old_index=render.read_text_exact(self.ws.index_path), old_skill=render.read_text_exact(self.ws.skill_path),
            name_hint=root.name, results=read_results(root, self.ws.knowledge_prefix), unreadable=unreadable, pending=self.state.pending,
            knowledge_prefix=self.ws.knowledge_prefix, knowledge_listed=set(listing.knowledge),
            exists=lambda rel: (root / rel).exists(), is_file=lambda rel: (root / rel).is_file(),
        )

    # -- apply ------------------------------------------------------------------

    def apply(self, decision: Decision) -> None:
        """Stamp the new drops, move the finished plans, write INDEX.md and SKILL.md, and record
        the new state; nothing is written when the decision is to do nothing."""
        root, ctx, listing, state = self.root, self.ctx, self.listing, self.state
        new_drops, moves = decision.new_drops, decision.moves
        # New drops or moves: this run commits. With many new files the commit's `git add`
        # costs most, so it starts now, in the background, for the paths consolidate only
        # reads (knowledge/, snippets/); the paths it writes follow once they are written.
        early = ctx is not None and bool(new_drops or moves)
        self.packed = early and self.packing
        if ctx is not None and decision.wants_commit:
            gitops.check_committable(ctx)  # before writing anything
        if early:
            if self.packed:
                stamped = {rel: self.d_extra[rel].blob for rel in new_drops if rel in self.d_extra and self.d_extra[rel].blob is not None}
                self.blobs.store_in_background(stamped, root)
            if self.bulk:  # `git add` once kb's packs are in place
                first = self.blobs.wait if self.packed else None
                self.background.append(gitops.Prestage(ctx, root, ("knowledge", "snippets"), bulk=not self.packed, first=first))
        if decision.nothing:
            if self.pool is not None:
                _release(self.pool)
            self._record(decision)
            return
        # Remember what is being consolidated before touching anything: if this run dies
        # half-way, the next one still commits it.
        state.pending = decision.pending
        state.key = None
        cache_mod.save_state(root, state)
        self.say(f"stamping {len(new_drops)} drops")
        for work in self.background:
            if isinstance(work, gitops.Prestage):
                # Writing a pack holds the GIL in stretches, and each of stamping's 10,000
                # stat calls would wait one out; the `git add` after it is a process.
                work.wait_first()
        prepared = {rel: (listing.drops[rel], extra.stamped) for rel, extra in self.d_extra.items() if extra.stamped}
        # A dry look (--no-commit) stamps no drop; a drop kb could not read with confidence is
        # never stamped (the cache alone remembers it as consolidated, see _record_writes).
        journaled = _stamp_drops(root, decision.stamp if ctx is not None else [], self.now, prepared)
        rewriting = None
        if journaled and self.pool is not None:
            # Rewriting thousands of drops is system calls: the workers share it while this
            # process moves the plans and writes INDEX.md and SKILL.md. Making them durable (one
            # filesystem flush) waits on the disk; nothing else does, so that runs alongside the commit.
            shards = scan.pool_size()
            rewriting = [self.pool.submit(stamp.rewrite_from_journal, root, _stamp_folder(root), i, shards) for i in range(shards)]
        elif journaled:
            stamp.apply_journal(root, _stamp_folder(root))
        if self.pool is not None and rewriting is None:
            _release(self.pool)
        # With a commit to come, a rename is all a move needs: the commit's `git add -A` stages
        # it exactly as `git mv` would (git records no renames), without waiting for the
        # background add. Without one, `git mv` puts the move in the index.
        mover = _repo_for_moves(root) if ctx is None and moves else None
        for src, dest in moves.items():
            gitops.move(mover, root, src, dest)
        if decision.index_changed:
            atomic_write_text(self.ws.index_path, decision.index_text)
        if decision.skill_changed:
            atomic_write_text(self.ws.skill_path, decision.skill_text)
        written: dict[str, scan.Stat] = {}  # path -> its stat once stamped, from the workers that wrote it
        if rewriting is not None:
            for shard in rewriting:
                written.update(shard.result())  # every drop is stamped (in the page cache)
            paths = stamp.journal_paths(root, journaled)
            self.background.append(_Finishing(self.pool.submit(stamp.finish_journal, root, _stamp_folder(root), paths)))
            _release(self.pool)
        if early and self.bulk:
            _wait_for_git(self.background)  # one `git add` at a time
            self.late = gitops.Prestage(ctx, root, ("drops", "plans", "INDEX.md", "SKILL.md"), bulk=not self.packed)
            self.background.append(self.late)
        self.say("recording the new state")
        self._record_writes(decision, written)
        self._record(decision)

    def _record_writes(self, decision: Decision, written: dict[str, scan.Stat]) -> None:
        """The cache and the fingerprint must describe what kb just wrote as it was written (drops
        stamped, plans moved, INDEX.md and SKILL.md). Every other file keeps the stat it was
        read with: one that someone changed while we ran no longer matches it, so the next
        run reads it again instead of trusting the fingerprint."""
        root, listing = self.root, self.listing
        base = os.fspath(root)
        for rel in [*decision.new_drops, *decision.due]:
            if self.ctx is None:
                # A dry look wrote nothing into the drop: the cache remembers it as consolidated,
                # its stamp due with the run that commits (see decide: due).
                entry = self.d_cache.get(rel)
                if entry is not None and rel in decision.new_drops:
                    self.d_cache[rel] = [entry[0], {**entry[1], "consolidated": self.now, "stamp_due": True}]
                continue
            path = os.path.join(base, rel)
            stat = written.get(path) or scan.stat_or_none(path)
            entry = self.d_cache.get(rel)
            if stat is None or entry is None:
                listing.drops.pop(rel, None)
                self.d_cache.pop(rel, None)
                continue
            listing.drops[rel] = stat
            info = {k: v for k, v in entry[1].items() if k != "stamp_due"}
            self.d_cache[rel] = [list(stat), {**info, "consolidated": self.now}]
        for src, dest in decision.moves.items():
            listing.plans.pop(src, None)
            self.p_cache.pop(src, None)
            stat = scan.stat_or_none(root / dest)
            if stat is not None:
                listing.completed[dest] = stat
        listing.extras = {rel: scan.stat_or_none(root / rel) for rel in Listing.EXTRAS}

    def _record(self, decision: Decision) -> None:
        """The fingerprint, warnings and totals a no-op rerun repeats, and the cache. The state
        is saved now only when no commit follows: otherwise once, after the commit; should that
        fail, the state saved before the stamp (what is pending, no fingerprint to trust) makes
        the next run commit."""
        state = self.state
        state.key = self.listing.key()
        state.warnings = decision.kept_warnings()
        state.errors = [e.to_dict() for e in decision.errors]
        state.totals = decision.totals
        state.skill_name = decision.skill_name
        cache_mod.save_cache(self.root, {"knowledge": self.k_cache, "drops": self.d_cache, "plans": self.p_cache})
        if not self.commits(decision):
            cache_mod.save_state(self.root, state)

    # -- commit -------------------------------------------------------------------

    def commits(self, decision: Decision) -> bool:
        """Whether this run makes a commit (one is due, and one may be made)."""
        return self.ctx is not None and decision.wants_commit

    def commit(self, decision: Decision) -> tuple[dict[str, Any] | None, str | None]:
        """(the commit made: sha, summary, files; or None and why not)."""
        if not self.commits(decision):
            return None, "nothing to consolidate" if self.ctx is not None else None
        ctx, root = self.ctx, self.root
        self.say("committing")
        _wait_for_git(self.background)
        # What kb wrote (drops, plans, INDEX.md, SKILL.md) was staged by the `git add` started
        # after its last write: no second add (see stage_managed). knowledge/ is added again, so
        # a file a person changed meanwhile is committed as it is now.
        staged = frozenset(self.late.specs) if self.late is not None and self.late.ok else frozenset()
        expected = 0 if self.packed else len(decision.new_drops) + self.fresh_reads + len(decision.moves) + 2
        managed = self.ws.managed_paths()
        changes = gitops.stage_managed(ctx, root, expected=expected, staged=staged, managed=managed)
        commit, skipped = None, None
        if not changes:
            skipped = "the managed paths already match HEAD"
        else:
            message = decision.commit_message(changes)
            sha = gitops.commit_managed(ctx, root, message, root / ".kb" / "consolidate" / "COMMIT_MSG",
                                        managed=managed)
            commit = {"sha": sha, "summary": message.split("\n", 1)[0], "files": len(changes)}
        self.state.pending = None
        cache_mod.save_state(root, self.state)
        return commit, skipped


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


PREVIEW = ".kb/consolidate/preview"


def write_previews(ws: Workspace, decision: Decision) -> dict[str, str]:
    """A dry look's INDEX.md and SKILL.md, as a run would write them, under .kb/ (local state):
    ``{"INDEX.md": preview path, ...}`` for each that would change; stale previews are removed."""
    folder = ws.root / PREVIEW
    out: dict[str, str] = {}
    for name, changed, text in (("INDEX.md", decision.index_changed, decision.index_text),
                                ("SKILL.md", decision.skill_changed, decision.skill_text)):
        path = folder / name
        if changed:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
            out[name] = ws.rel(path)
        elif path.exists():
            path.unlink()
    return out


def _stamp_folder(root: Path) -> Path:
    return root / ".kb" / "consolidate"


def recover(root: Path) -> None:
    """Finish a stamp a crash cut short (see stamp), before anything reads the drops."""
    stamp.recover(root, _stamp_folder(root))


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


def worker_pool(listing: Listing, cached: dict[str, dict[str, list]]) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes when there are enough files to read (see scan.worker_pool)."""
    return scan.worker_pool(listing_mod.misses(listing, cached))
