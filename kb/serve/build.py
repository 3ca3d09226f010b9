"""``kb serve --build OUT``: the same pages, written as a static site with relative links."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import PathError
from kb.fsutil import atomic_write_bytes, atomic_write_text
from kb.serve.site import Site

# Written into OUT so a later build knows the folder is its own and may replace what it wrote.
MARKER = ".kb-site.json"
# Workspace folders a site must never be written into.
RESERVED = ("knowledge", "plans", "drops", "snippets", "runners", "validators", ".kb", ".git", "kb", "tests")


@dataclass
class BuildResult:
    out: Path
    pages: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def check_out_dir(root: Path, out: Path) -> Path:
    """OUT resolved; refused unless it is a folder of its own inside the workspace."""
    root = root.resolve()
    out = out.resolve()
    if out == root or root not in out.parents:
        raise PathError(f"--build {out}: the site must be written inside the workspace {root} (e.g. --build site)")
    top = out.relative_to(root).parts[0]
    if top in RESERVED:
        raise PathError(f"--build {out}: {top}/ belongs to the workspace; choose another folder (e.g. --build site)")
    if out.exists() and not out.is_dir():
        raise PathError(f"--build {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise PathError(f"--build {out}: the folder has files kb did not write; refusing to overwrite them")
    return out


def build_site(site: Site, out: Path) -> BuildResult:
    """Write every page of ``site`` under ``out``; files an earlier build wrote that are gone are removed."""
    out = check_out_dir(site.root, out)
    result = BuildResult(out=out)
    with site.snapshot():
        for page in site.all_pages():
            response = site.get("/" + page, static=True)
            if response.status != 200:
                result.skipped.append(page)  # vanished while building
                continue
            atomic_write_bytes(out / page, response.body)
            result.pages.append(page)
    previous: list[str] = []
    marker = out / MARKER
    if marker.is_file():
        try:
            previous = list(json.loads(marker.read_text(encoding="utf-8")).get("pages", []))
        except (OSError, ValueError):
            previous = []
    written = set(result.pages)
    for page in previous:
        stale = (out / page).resolve()
        if page not in written and out in stale.parents and stale.is_file():
            stale.unlink()
            result.removed.append(page)
    atomic_write_text(marker, json.dumps({"pages": sorted(result.pages)}, indent=1) + "\n")
    return result
