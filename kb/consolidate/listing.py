"""What consolidate reads, listed: every knowledge file, drop and plan with its stat (the
fingerprint a no-op rerun compares), and what the cache still answers for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kb.consolidate import cache as cache_mod
from kb.consolidate import scan
from kb.consolidate.plans import COMPLETED
from kb.workspace import Workspace


# -- listing and fingerprint ------------------------------------------------


class Listing:
    """Every file consolidate reads, with its stat: enough to tell whether anything changed.

    With ``stat=False`` knowledge files and drops are listed by name only, for a run that
    reads them all anyway (there is no cache to compare with): each read records the stat
    of what it read, far cheaper from the open file, and off this process on the workers.
    """

    EXTRAS = ("snippets/results.json", "runners/index.md.j2", "runners/skill.md.j2", "INDEX.md", "SKILL.md")

    def __init__(self, root: Path, stat: bool = True, ws: Workspace | None = None):
        self.stat = stat
        if ws is not None and not ws.default_layout:  # an adopted tree: where its kb.toml says
            def listed(rels: list[str], with_stat: bool = True) -> dict[str, scan.Stat | None]:
                return {rel: scan.stat_or_none(root / rel) if with_stat else None for rel in rels}

            self.knowledge = listed(ws.knowledge_files(), stat)
            self.drops = listed(ws.layout_files("drops"), stat)
            self.plans = listed(ws.layout_files("plans"))
            self.completed = listed(ws.layout_files("completed"))
        else:
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


def listing_unchanged(root: Path, state: cache_mod.State, ws: Workspace | None = None) -> tuple[Listing, bool]:
    """(the workspace's listing, whether it is what the last run left): without a cache
    every file is read, and no stat is worth taking before that (see Listing)."""
    listing = Listing(root, stat=cache_mod.has_cache(root), ws=ws)
    return listing, listing.stat and state.key == listing.key()


# -- the cache ---------------------------------------------------------------


def from_cache(listing: dict[str, scan.Stat], cached: dict[str, list]) -> tuple[dict[str, Any], dict[str, list], list[str]]:
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


def take_reads(reads: list[scan.Read], listing: dict[str, scan.Stat | None], infos: dict[str, Any], fresh: dict[str, list],
                unreadable: dict[str, str]) -> dict[str, scan.Extra]:
    """Add what was read to ``infos`` and the cache entries, and the stat of what was read
    to ``listing``; returns the reads' extras."""
    extras: dict[str, scan.Extra] = {}
    for rel, info, error, extra, stat in reads:
        if error is not None:
            unreadable[rel] = error
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


def misses(listing: Listing, cached: dict[str, dict[str, list]]) -> int:
    """How many knowledge files and drops the cache cannot answer for."""
    return sum(1 for kind in ("knowledge", "drops") for rel, stat in getattr(listing, kind).items()
               if (hit := cached[kind].get(rel)) is None or stat is None or tuple(hit[0]) != tuple(stat))
