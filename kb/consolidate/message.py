"""The words consolidate uses for what it did: PART and BATCH ranges, and the commit message
(summary line, then plans, failed PARTs, knowledge files, paths)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from kb.consolidate.index_context import natural_key
from kb.consolidate.model import WRITTEN

if TYPE_CHECKING:
    from kb.consolidate.gitops import Change

LIST_LIMIT = 50  # entries per list in a commit message


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


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= LIST_LIMIT:
        return lines
    return lines[:LIST_LIMIT] + [f"- ... and {len(lines) - LIST_LIMIT} more"]


def commit_message(pending: dict[str, Any], changes: list[Change], warnings: int, prefix: str = "knowledge/") -> str:
    """Summary line + body: plans, batches, PARTs, knowledge files added/changed, with counts.

    Files added and changed are counted from the drops, as stdout and --json count them (one
    set of numbers); what git found besides (a file edited or removed by hand) is listed apart.
    ``prefix``: the layout's knowledge root ("" where it is the workspace: then any Markdown file
    git found changed that is neither a drop nor a plan of this run counts as knowledge).
    """
    drops = pending.get("drops") or []
    plans = pending.get("plans") or []
    k_added = sorted((d["knowledge_file"] for d in drops if d.get("change") == "added" and d.get("knowledge_file")), key=natural_key)
    k_changed = sorted((d["knowledge_file"] for d in drops if d.get("change") == "changed" and d.get("knowledge_file")), key=natural_key)
    targets = {d.get("knowledge_file") for d in drops}
    # What kb itself wrote or moved is no knowledge edit, where the knowledge root holds it too.
    kb_files = {"INDEX.md", "SKILL.md", *(d.get("path") for d in drops),
                *(p.get(k) for p in plans for k in ("path", "moved_to"))}
    k_other, k_removed = [], []  # one pass over the changes (20,000 in a big run)
    for c in changes:
        if c.path.startswith(prefix) and c.path.endswith(".md") and c.path not in kb_files:
            if c.status == "D":
                k_removed.append(c.path)
            elif c.status in "ACMRT" and c.path not in targets:
                k_other.append(c.path)
    k_other.sort(key=natural_key)
    k_removed.sort(key=natural_key)
    moved = [p for p in plans if p.get("moved_to")]
    bits = []
    if drops:
        bits.append(f"{len(drops)} {'drop' if len(drops) == 1 else 'drops'}")
        bits.append(f"{len(k_added)} {'file' if len(k_added) == 1 else 'files'} added, {len(k_changed)} changed")
    elif k_other or k_removed:
        edited = len(k_other) + len(k_removed)
        bits.append(f"{edited} knowledge {'file' if edited == 1 else 'files'} edited or removed outside a drop")
    if moved:
        bits.append(f"{len(moved)} {'plan' if len(moved) == 1 else 'plans'} completed")
    summary = "kb consolidate: " + ", ".join(bits) if bits else "kb consolidate: refresh INDEX.md and SKILL.md"
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
    for title, paths in (("Knowledge files added", k_added), ("Knowledge files changed", k_changed),
                         ("Knowledge files added or changed outside a drop", k_other), ("Knowledge files removed", k_removed)):
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
