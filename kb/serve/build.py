"""``kb serve --build OUT``: the same pages, written as a static site with relative links, rebuilt incrementally.

A build records what it wrote and from what in the workspace's .kb/site-builds/ (keyed by OUT's path,
never inside the site, which is published as it is): each source file's stat, the
paths its links were checked against, the files it published, its title, sections and search
words. The next build rewrites only the pages whose source changed, whose snippet results
changed, or whose links now resolve differently (a file or folder they name appeared or
vanished); then the folder pages, navigation script and search shards whose inputs changed; and
removes what is gone. A change of kb's pages themselves (templates, scripts, code) or of the
site's name rebuilds everything. Many pages at once are rendered by one worker process per core.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kb.errors import PathError
from kb.fsutil import atomic_write_bytes, atomic_write_text
from kb.serve import search_static, urls
from kb.serve.site import NAV_PREFIX, STATIC_FILES, Site

# Where builds kept their state before it moved under .kb/ (it was published with the site); a
# folder holding one is a site kb built, and the file goes at the next build.
LEGACY_MARKER = ".kb-site.json"
STATE_FOLDER = ".kb/site-builds"
STATE_VERSION = 3
# Workspace folders a site must never be written into.
RESERVED = ("knowledge", "plans", "drops", "snippets", "runners", "validators", ".kb", ".git", "kb", "tests")
# Below this many pages to render, worker processes cost more than they save.
PARALLEL_MIN = 150
CHUNK = 40  # pages a worker renders per task


@dataclass
class BuildResult:
    out: Path
    pages: list[str] = field(default_factory=list)  # written by this build
    unchanged: int = 0  # kept from the last build as they were
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def check_out_dir(root: Path, out: Path, protected: tuple[str, ...] = ()) -> Path:
    """OUT resolved: a folder of its own, inside the workspace or anywhere the person says;
    refused where it would hold the workspace, lie in one of its own folders (``protected``:
    workspace-relative folders of the layout, the knowledge root among them, besides
    RESERVED), or overwrite files kb did not write."""
    root = root.resolve()
    out = out.resolve()
    fix = "choose an empty folder or one a previous --build wrote (e.g. --build site)"
    if out == root or out in root.parents:
        raise PathError(f"--build {out}: that folder holds the workspace {root}; {fix}")
    if root in out.parents:
        rel = out.relative_to(root).as_posix()
        top = rel.split("/", 1)[0]
        if top in RESERVED:
            raise PathError(f"--build {out}: {top}/ belongs to the workspace; {fix}")
        for folder in protected:
            if folder not in ("", ".") and (rel == folder or rel.startswith(folder.rstrip("/") + "/")):
                raise PathError(f"--build {out}: {folder}/ holds the workspace's knowledge, drops or plans; {fix}")
    if out.exists() and not out.is_dir():
        raise PathError(f"--build {out}: exists and is not a folder; {fix}")
    if out.is_dir() and any(out.iterdir()) and not _built_by_kb(root, out):
        raise PathError(f"--build {out}: the folder has files kb did not write; refusing to overwrite them ({fix})")
    return out


def state_path(root: Path, out: Path) -> Path:
    """The file under the workspace's .kb/ that holds the state of the site built at ``out``."""
    return Path(root) / STATE_FOLDER / (hashlib.sha256(str(out).encode("utf-8")).hexdigest()[:20] + ".json")


def _built_by_kb(root: Path, out: Path) -> bool:
    """Whether ``out`` is a site kb built: its state is recorded, or it has kb's marker or tree script."""
    if state_path(root, out).is_file() or (out / LEGACY_MARKER).is_file():
        return True
    try:  # the state may be gone with .kb/ (a fresh clone); the site's tree script is kb's own
        with open(out / urls.STATIC_PREFIX / urls.NAV_DATA, "rb") as handle:
            return handle.read(len(NAV_PREFIX)) == NAV_PREFIX
    except OSError:
        return False


def _sig(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:20]


def _kb_key(site_name: str) -> str:
    """What every page depends on: kb's serve package (code, templates, scripts) and the site's name."""
    h = hashlib.sha256(site_name.encode("utf-8"))
    package = resources.files("kb.serve")
    for folder in (package, package / "templates", package / "static"):
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_file() and not entry.name.endswith(".pyc"):
                h.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return h.hexdigest()[:20]


def _load_state(root: Path, out: Path) -> dict:
    try:
        state = json.loads(state_path(root, out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) and state.get("out") == str(out) else {}


def _folders_with_markdown(rels: list[str]) -> set[str]:
    folders = set()
    for rel in rels:
        parts = rel.split("/")[:-1]
        folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return folders


# ----- rendering one batch of pages (here, or in a worker process) ---------------------------

_WORKER_SITE: Site | None = None


def _die_with_parent() -> None:
    """A worker ends when the build that started it is killed (Linux; elsewhere it ends at its next task)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(known: list) -> None:
    _die_with_parent()
    # The forked worker has the build's Site with what it read already (results.json parsed once);
    # what it inherited is never freed, so the collector need not walk it again.
    gc.freeze()
    assert _WORKER_SITE is not None
    _WORKER_SITE.set_known(known)  # the listing holds for the worker's whole life


def _render_pages(site: Site, out: Path, items: list[tuple[str, str]]) -> list[dict]:
    """Render and write ``items`` ((page, source)); one record per page for the build state."""
    records = []
    for page, rel in items:
        response, deps = site.page_with_deps(page)
        record: dict = {"page": page, "rel": rel, "ok": response.status == 200}
        if response.status == 200:
            atomic_write_bytes(out / page, response.body, durable=False)
            record["deps"] = sorted(deps.paths)
            record["assets"] = sorted(deps.assets)
            if deps.sections is not None:
                title, sections = deps.info or site.file_info(rel)
                record["title"], record["sections"] = title, sections
                record["search"] = [search_static.section_record(s) for s in deps.sections]
        records.append(record)
    return records


def _render_in_worker(out: str, items: list[tuple[str, str]]) -> list[dict]:
    assert _WORKER_SITE is not None
    return _render_pages(_WORKER_SITE, Path(out), items)


def _render_all(site: Site, out: Path, items: list[tuple[str, str]], known: list, workers: int) -> list[dict]:
    if workers <= 1 or len(items) < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
        with site.known_files(known):
            return _render_pages(site, out, items)
    global _WORKER_SITE
    # Small chunks, so a worker slowed by other work on the machine does not leave the other idle at the end.
    count = max(workers * 4, len(items) // CHUNK)
    chunks = [items[i::count] for i in range(count)]
    context = multiprocessing.get_context("fork")
    records: list[dict] = []
    _WORKER_SITE = site  # what the forked workers start from
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(known,)) as pool:
            for part in pool.map(_render_in_worker, [str(out)] * len(chunks), chunks):
                records.extend(part)
    finally:
        _WORKER_SITE = None
    return records


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# ----- the build ------------------------------------------------------------------------------

def build_site(site: Site, out: Path, workers: int | None = None, protected: tuple[str, ...] = ()) -> BuildResult:
    """Write the site of ``site`` under ``out``, rewriting only what changed since the last build there."""
    out = check_out_dir(site.root, out, protected)
    root = site.root
    result = BuildResult(out=out)
    state = _load_state(root, out)
    name = site.name()
    key = _kb_key(name)
    full = state.get("version") != STATE_VERSION or state.get("key") != key
    before: dict[str, dict] = {} if full else state.get("docs", {})

    # What there is now, and what appeared or vanished since (links to it resolve differently).
    layout = site.layout  # where knowledge/, drops/ and plans/ lie in this workspace
    knowledge = layout.markdown_files(root, "knowledge")
    drops = layout.markdown_files(root, "drops")
    plans = layout.markdown_files(root, "plans")
    docs = [(urls.HOME, "INDEX.md")]
    if urls.safe_file(root, "SKILL.md") is not None:
        docs.append((urls.SKILL, "SKILL.md"))
    docs += [(urls.page_for_source(rel) or "", rel) for rel in knowledge + drops]
    present = set(knowledge) | set(drops) | set(plans)
    present |= {rel for rel in ("INDEX.md", "SKILL.md") if urls.safe_file(root, rel) is not None}
    folders = _folders_with_markdown(knowledge)
    appeared = present ^ set(state.get("present", [])) | folders ^ set(state.get("folders", []))
    if full:
        appeared = set()
    sigs = {rel: _sig(root / layout.real(rel)) for _, rel in docs}

    # Snippet results, per knowledge file (parsed again only when results.json changed).
    results_sig = _sig(root / "snippets" / "results.json")
    fingerprints: dict[str, str] = state.get("results", {}) if not full else {}
    if full or results_sig != state.get("results_sig"):
        results = site.results()
        fingerprints = {rel: _digest([vars(e) for e in results.for_file(rel)]) for rel in knowledge}
    asset_sigs: dict[str, list[int] | None] = {} if full else state.get("asset_sigs", {})

    def stale(page: str, rel: str) -> bool:
        old = before.get(page)
        if old is None or not old.get("ok") or old.get("sig") != sigs.get(rel):
            return True
        if rel.startswith("knowledge/") and old.get("results") != fingerprints.get(rel):
            return True
        if appeared and appeared.intersection(old.get("deps", [])):
            return True
        return any(_sig(root / layout.real(a)) != asset_sigs.get(a) for a in old.get("assets", []))

    todo = [(page, rel) for page, rel in docs if stale(page, rel)]
    index_missing = urls.safe_file(root, "INDEX.md") is None
    if index_missing:
        todo = [item for item in todo if item[0] != urls.HOME]  # the tree page: rendered with the listing below

    known_rels = [(rel, urls.page_for_source(rel) or "", "", []) for rel in knowledge]
    records = {r["page"]: r for r in _render_all(site, out, todo, known_rels, workers or _workers())}

    docs_state: dict[str, dict] = {}
    for page, rel in docs:
        record = records.get(page)
        if record is None:
            if page in before:
                docs_state[page] = before[page]
                result.unchanged += 1
            continue
        if not record["ok"]:
            if not (page == urls.HOME and index_missing):
                result.skipped.append(page)  # vanished while building
            continue
        record["sig"] = sigs.get(rel)
        if rel.startswith("knowledge/"):
            record["results"] = fingerprints.get(rel)
        docs_state[page] = record
        result.pages.append(page)

    # The listing with titles and sections, from this build's records or the last one's.
    listing = []
    for rel in knowledge:
        rec = docs_state.get(urls.page_for_source(rel) or "", {})
        listing.append((rel, urls.page_for_source(rel) or "", rec.get("title") or Path(rel).stem, rec.get("sections", [])))

    extra: list[str] = []  # pages besides the documents, written or kept
    parts_state: dict[str, str] = {}

    def write(page: str, make, part: str, inputs: object) -> None:
        """Write ``make()`` at ``page`` unless the inputs it was made from are the last build's."""
        digest = _digest(inputs)
        if not full and state.get("parts", {}).get(part) == digest and (out / page).is_file():
            extra.append(page)
            parts_state[part] = digest
            result.unchanged += 1
            return
        response = make()
        if response.status != 200:
            return
        atomic_write_bytes(out / page, response.body, durable=False)
        extra.append(page)
        parts_state[part] = digest
        result.pages.append(page)

    def static(page: str):
        return lambda: site.get("/" + urls.url_path(page), static=True)

    with site.known_files(listing):
        nav_inputs = [(rel, title) for rel, _, title, _ in listing]
        if index_missing:
            write(urls.HOME, static(urls.HOME), "home", nav_inputs)
        below: dict[str, list] = {}  # folder -> the files under it, gathered in one pass
        for rel, _, title, secs in listing:
            parts = rel.split("/")[:-1]
            for i in range(len(parts)):
                below.setdefault("/".join(parts[: i + 1]), []).append((rel, title, secs))
        for page in sorted(urls.topic_page(f) for f in folders | {"knowledge"}):
            write(page, static(page), "topic:" + page, below.get(page[: -len("/index.html")], []))
        nav = f"{urls.STATIC_PREFIX}{urls.NAV_DATA}"
        write(nav, static(nav), "nav", nav_inputs)
        write(urls.PLANS, static(urls.PLANS), "plans", [[rel, _sig(root / layout.real(rel))] for rel in plans + drops] + [knowledge])
        for page in (urls.SEARCH, *(f"{urls.STATIC_PREFIX}{name}" for name in STATIC_FILES)):
            write(page, static(page), "kb:" + page, key)

    # The search shards: rewritten (where their bytes changed) when a knowledge file did.
    files_for_search = []
    for rel in knowledge:
        rec = docs_state.get(urls.page_for_source(rel) or "", {})
        files_for_search.append((urls.page_for_source(rel) or "", rec.get("title") or Path(rel).stem, rec.get("search", [])))
    # Its inputs changed when a knowledge file was rendered again, or appeared, or vanished.
    search_inputs = _digest(knowledge)
    rerendered = any(rel.startswith("knowledge/") for _, rel in todo)
    if full or rerendered or search_inputs != state.get("search") or not (out / search_static.FOLDER / "index.js").is_file():
        paths, changed = search_static.write_index(out, files_for_search)
        result.pages += changed
        result.unchanged += len(paths) - len(changed)
    else:
        paths = state.get("search_paths", [])
        result.unchanged += len(paths)
    extra += paths

    # Files of the tree the pages link to, published beside them.
    assets = sorted({a for rec in docs_state.values() for a in rec.get("assets", [])})
    new_asset_sigs = {}
    for rel in assets:
        source = layout.file(root, rel, "knowledge")
        if source is None:
            continue
        new_asset_sigs[rel] = _sig(source)
        if full or asset_sigs.get(rel) != new_asset_sigs[rel] or not (out / rel).is_file():
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            result.pages.append(rel)
        else:
            result.unchanged += 1
    extra += list(new_asset_sigs)

    # What an earlier build wrote that is gone now.
    written = set(docs_state) | set(extra)
    for page in state.get("pages", []):
        if page in written:
            continue
        stale_path = (out / page).resolve()
        if out in stale_path.parents and stale_path.is_file():
            stale_path.unlink()
            result.removed.append(page)

    new_state = {
        "version": STATE_VERSION,
        "out": str(out),
        "key": key,
        "pages": sorted(written),
        "present": sorted(present),
        "folders": sorted(folders),
        "results_sig": results_sig,
        "results": fingerprints,
        "asset_sigs": new_asset_sigs,
        "parts": parts_state,
        "search": search_inputs,
        "search_paths": paths,
        "docs": docs_state,
    }
    # Not flushed to disk on its own (the pages are not either): the site and its record are rebuilt at will.
    atomic_write_text(state_path(root, out), json.dumps(new_state, ensure_ascii=False, separators=(",", ":")) + "\n",
                      durable=False)
    (out / LEGACY_MARKER).unlink(missing_ok=True)
    return result
