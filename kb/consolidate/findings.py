"""The oracle's warnings about the whole tree (so a rerun reports the same ones): plans that
read or cite what knowledge/ lacks, drops and knowledge files that do not account for each
other, near-duplicate files. Plain data in, :class:`Finding` lists out; whether some other
workspace file exists is asked of ``exists`` (a workspace-relative path -> bool)."""

from __future__ import annotations

import re
from typing import Callable

from kb.consolidate.index_context import natural_key
from kb.consolidate.model import WRITTEN, Finding
from kb.consolidate.refs import KnowledgeIndex, read_is_missing

Exists = Callable[[str], bool]


def plan_findings(plans: dict[str, dict | None], index: KnowledgeIndex, exists: Exists) -> list[Finding]:
    """Finished PARTs whose Step 0 reads or CITE references name no knowledge file."""
    out: list[Finding] = []
    tree = index.prefix or "the knowledge tree"  # the layout's knowledge root, as the person knows it
    for rel, info in sorted(plans.items()):
        for part in (info or {}).get("parts", []):
            if part["status"] != "done":
                continue  # a pending PART may still be waiting for files a later PART writes
            for path, line in part["reads"]:
                if read_is_missing(index, path, exists):
                    message = f"{rel}:{line}: PART {part['number']} Step 0 reads {path}, which is not in {tree}"
                    out.append(Finding("missing-read", message, path=rel, plan=rel))
            for ref in part["cite"]:
                for missing in index.missing_cites(ref):
                    alone = re.sub(r"\([^()]*\)", "", ref).strip() == missing  # the ref names just this
                    what = ref if alone else f"{missing} (in \"{ref}\")"
                    message = f"{rel}:{part['line']}: PART {part['number']} cites {what}, which matches no file in {tree}"
                    out.append(Finding("dangling-cite", message, path=rel, plan=rel))
    return out


def tree_findings(knowledge: dict[str, dict], drops: dict[str, dict], is_file: Exists) -> list[Finding]:
    """Complete drops whose knowledge file is missing (``is_file``: whether a workspace path is
    a file), and knowledge files no drop accounts for."""
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
        elif target not in knowledge and not is_file(target):
            out.append(Finding("missing-knowledge-file", f"{rel}: its knowledge file {target} does not exist", path=rel))
    for rel in sorted(knowledge, key=natural_key):
        if rel not in accounted:
            out.append(Finding("unaccounted-file", f"{rel}: no drop accounts for this file", path=rel))
    return out


def duplicate_findings(knowledge: dict[str, dict]) -> list[Finding]:
    """Pairs of knowledge files whose texts are near-identical (by their cached signatures)."""
    signatures = {rel: info.get("sig") for rel, info in knowledge.items() if info.get("sig")}
    if len(signatures) < 2:
        return []
    from kb.consolidate.similar import near_duplicates

    return [
        Finding("near-duplicate", f"{pair.a} and {pair.b} are near-identical (~{round(pair.similarity * 100)}% similar)", path=pair.a)
        for pair in near_duplicates(signatures)
    ]
