"""The site's URL scheme, shared by the live server and the static build.

Every page has one workspace-relative URL path (``index.html``,
``knowledge/<topic>/<file>.html``, ``plans.html`` ...), and every link a page
makes is relative to its own path, so the same HTML works served and on disk.
Request paths are decoded once and refused when they could name anything
outside the workspace; files are read only after their resolved path
(symlinks followed) is checked to lie inside the folder they belong to.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

HOME = "index.html"
PLANS = "plans.html"
SEARCH = "search.html"
SKILL = "skill.html"
STATIC_PREFIX = "_static/"

NAV_DATA = "nav-data.js"

# Files inside knowledge/ served as they are (images a knowledge file shows, scripts and data it
# links). Any other name is served as text when it is UTF-8; HTML never is (it would run as a page
# of this site, unsanitised), nor is a name that would stand where a page is written.
ASSET_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".py": "text/plain; charset=utf-8",
    ".sh": "text/plain; charset=utf-8",
    ".slurm": "text/plain; charset=utf-8",
    ".yaml": "text/plain; charset=utf-8",
    ".yml": "text/plain; charset=utf-8",
    ".toml": "text/plain; charset=utf-8",
    ".ipynb": "application/json",
    ".zip": "application/zip",
    ".gz": "application/gzip",
}
NEVER_PUBLISHED = (".html", ".htm", ".xhtml", ".shtml", ".mhtml", ".md")


@dataclass(frozen=True)
class Route:
    """What a URL path names: a kind of page and the workspace file behind it (if any)."""

    kind: str  # home, doc, knowledge, drop, plans, search, static, asset, bare, redirect
    rel: str | None = None  # workspace-relative source file, or the static name / snippet slug / redirect target


def clean_path(raw: str) -> str | None:
    """A request path decoded once, as workspace-style segments joined by '/' ('' is home).

    None when the path is unsafe: '..' or '.' segments, hidden names, backslashes, NUL or
    invalid UTF-8. A '%' left after decoding is part of a name (``50%-faster.md``): the path
    is never decoded twice.
    """
    try:
        path = unquote(urlsplit(raw).path, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    if any(ch in path for ch in ("\x00", "\\")) or any(ord(ch) < 32 for ch in path):
        return None
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or p.startswith(".") for p in parts):
        return None
    return "/".join(parts)


def route(path: str) -> Route | None:
    """Map a cleaned URL path to the page it names; None for anything the site does not serve."""
    if path in ("", HOME):
        return Route("home", "INDEX.md")
    if path == SKILL:
        return Route("doc", "SKILL.md")
    if path == PLANS:
        return Route("plans")
    if path == SEARCH:
        return Route("search")
    if path.startswith(STATIC_PREFIX):
        return Route("static", path[len(STATIC_PREFIX):])
    if path == "knowledge":
        return Route("redirect", "knowledge/index.html")
    if path.startswith("knowledge/"):
        stem, ext = posixpath.splitext(path)
        if ext == ".html":
            # knowledge/<folder>/index.html lists the folder unless a knowledge file index.md is there.
            return Route("knowledge", stem + ".md")
        if not ext:
            return Route("bare", path)  # a file without an extension (Makefile, run), else a folder
        if ext == ".md":
            return Route("redirect", stem + ".html")
        if asset_type(path) is not None:
            return Route("asset", path)
        return None
    if path.startswith("drops/") and path.endswith(".html"):
        return Route("drop", path[: -len(".html")] + ".md")
    return None


def asset_type(rel: str) -> str | None:
    """The Content-Type a file of knowledge/ is published with; None for what is never published."""
    ext = posixpath.splitext(rel)[1].lower()
    if ext in NEVER_PUBLISHED or posixpath.basename(rel).startswith("."):
        return None
    return ASSET_TYPES.get(ext, "text/plain; charset=utf-8")


def page_for_source(rel: str) -> str | None:
    """The URL path of the page showing a workspace file; None when the site shows no page for it."""
    if rel == "INDEX.md":
        return HOME
    if rel == "SKILL.md":
        return SKILL
    stem, ext = posixpath.splitext(rel)
    if rel.startswith(("knowledge/", "drops/")) and ext.lower() == ".md":
        return stem + ".html"
    if rel.startswith("plans/") and ext.lower() == ".md":
        return f"{PLANS}#{plan_anchor(rel)}"
    if rel.startswith("knowledge/") and asset_type(rel) is not None:
        return rel
    return None


def topic_page(folder: str) -> str:
    """The URL path of the page listing a folder of knowledge/ (``knowledge`` itself included)."""
    return f"{folder.rstrip('/')}/index.html"


def plan_anchor(rel: str) -> str:
    """The id of a plan's section on the plans page."""
    return "plan-" + re.sub(r"[^a-z0-9]+", "-", rel.lower()).strip("-")


def relative(from_page: str, to_page: str) -> str:
    """``to_page`` (a URL path, maybe with '#fragment') as a link relative to the page ``from_page``."""
    target, _, fragment = to_page.partition("#")
    base = posixpath.dirname(from_page) or "."
    link = posixpath.relpath(target, base) if target else posixpath.basename(from_page)
    return link + (f"#{fragment}" if fragment else "")


def href(from_page: str, to_page: str) -> str:
    """``relative(from_page, to_page)`` percent-encoded for an href (names may hold '%', '#', spaces)."""
    link = relative(from_page, to_page)
    path, sep, fragment = link.partition("#")
    return quote(path, safe="/-_.~") + (sep + quote(fragment, safe="-_.~") if sep else "")


def url_path(page: str) -> str:
    """A site path percent-encoded for use in a URL (a Location header, a link from the root)."""
    path, sep, fragment = page.partition("#")
    return quote(path, safe="/-_.~") + (sep + quote(fragment, safe="-_.~") if sep else "")


def root_prefix(page: str) -> str:
    """'../' repeated to climb from a page to the site root ('' at the root)."""
    return "../" * page.count("/")


def safe_file(root: Path, rel: str, within: str = "") -> Path | None:
    """The file ``root/rel`` when it exists and resolves (symlinks followed) inside ``root/within``."""
    top = root.resolve()
    base = (root / within).resolve() if within else top
    if not _under(base, top):
        return None  # the folder itself is a link out of the workspace
    try:
        target = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not _under(target, base):
        return None
    return target if target.is_file() else None


def _under(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def markdown_files(root: Path, folder: str) -> list[str]:
    """Workspace-relative paths of the .md files under ``folder`` that resolve inside it, sorted.

    Hidden names are skipped; folder links are not followed, and a file link is kept only
    when it resolves inside ``folder`` (so a link out is left out, unread).
    """
    top = root.resolve()
    base = (root / folder).resolve()
    found: list[str] = []
    if not _under(base, top) or not base.is_dir():
        return found

    def walk(directory: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{prefix}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                walk(Path(entry.path), rel)
            elif entry.name.endswith(".md"):
                if entry.is_symlink():
                    if safe_file(root, rel, folder) is not None:
                        found.append(rel)
                elif entry.is_file(follow_symlinks=False):
                    found.append(rel)

    walk(root / folder, folder)
    return found
