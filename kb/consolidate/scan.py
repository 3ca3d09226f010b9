"""Read the workspace for consolidation: file listings with stat fingerprints, and what
INDEX.md needs from each knowledge file and drop (plain dicts, so they can be cached)."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterator

import yaml

from kb import drop_keys, records_yaml
from kb.consolidate import gitpack
from kb.consolidate.gitpack import PackedBlob
from kb.errors import PathError
from kb.fsutil import relative_inside, sha256_text
from kb.lifeline import die_with_parent
from kb.records import DROP_PREFIX, KnowledgeMeta, drop_from_parts, read_drop, read_knowledge, with_consolidated

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

Stat = tuple[int, int, int]  # (mtime_ns, size, inode): atomic writes always change the inode

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_H1 = re.compile(r"(?m)^#\s+(.+?)\s*#*\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S")
_BOLD_LINE = re.compile(r"^\*\*(?P<text>[^*]+?)\*\*[.:]?$")
_BOLD_KEY = re.compile(r"^\*\*[^*]+\*\*\s*:")
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,\-–]\s*\d+)*\]")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*\"'(\[])")
NON_CONTENT_SECTIONS = {"overview", "sources", "references", "source documents", "web research"}
SUMMARY_CHARS = 200
SUMMARY_HEAD = 4000  # characters


def stat_key(st: os.stat_result) -> Stat:
    """What the listing keeps of a stat."""
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def stat_of(entry: os.DirEntry | Path) -> Stat:
    return stat_key(entry.stat())


def walk(root: Path, folder: str, suffix: str = ".md", exclude: tuple[str, ...] = (), stat: bool = True) -> dict[str, Stat | None]:
    """Every ``*suffix`` file under ``root/folder`` (hidden entries and ``exclude`` sub-folders
    skipped, folder links not followed), keyed by workspace-relative POSIX path, with its
    stat (None with ``stat=False``: the names alone cost a tenth)."""
    out: dict[str, Stat | None] = {}
    start = root / folder
    if not start.is_dir():
        return out
    stack = [(start, folder)]
    while stack:
        path, rel = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            child = f"{rel}/{name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    if child not in exclude:
                        stack.append((Path(entry.path), child))
                elif name.endswith(suffix) and entry.is_file():
                    out[child] = stat_of(entry) if stat else None
            except OSError:
                continue
    return out


def walk_drops(root: Path, stat: bool = True) -> dict[str, Stat | None]:
    """The drop files directly in drops/ (stats as in :func:`walk`)."""
    out: dict[str, Stat | None] = {}
    folder = root / "drops"
    if not folder.is_dir():
        return out
    prefix = DROP_PREFIX.lower()
    for entry in os.scandir(folder):
        if entry.name.lower().startswith(prefix) and entry.name.endswith(".md") and entry.is_file():
            out[f"drops/{entry.name}"] = stat_of(entry) if stat else None
    return out


def stat_or_none(path: str | os.PathLike) -> Stat | None:
    try:
        return stat_key(os.stat(path))
    except OSError:
        return None


# -- knowledge files -------------------------------------------------------


def _clean_inline(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = _CITATION.sub("", text)
    text = text.replace("**", "").replace("__", "")
    return " ".join(text.split())


def _first_sentence(text: str) -> str:
    text = _clean_inline(text)
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(first) > SUMMARY_CHARS:
        cut = first[:SUMMARY_CHARS].rsplit(" ", 1)[0]
        first = cut.rstrip(",;:") + "…"
    return first


def _paragraphs(lines: list[str]) -> list[tuple[int, str]]:
    """(index of the heading level that precedes it, paragraph text) for prose paragraphs."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    fence: str | None = None
    section = 0
    for line in lines:
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence) and not fence_match.group(2).strip():
                fence = None
            continue
        if fence_match:
            fence = fence_match.group(1)
            if buf:
                out.append((section, " ".join(buf)))
                buf = []
            continue
        heading = _HEADING.match(line)
        stripped = line.strip()
        if heading or not stripped or stripped.startswith(("|", ">", "<!--", "---")) or _LIST_ITEM.match(line):
            if buf:
                out.append((section, " ".join(buf)))
                buf = []
            if heading:
                section += 1
            continue
        buf.append(stripped)
    if buf:
        out.append((section, " ".join(buf)))
    return out


# The shape kb's own files open with: the H1, a blank line, a one-line bold tagline, then a
# blank line or a heading. One match instead of a pass over the head's lines; anything
# else (a "**Key**:" line, a two-line paragraph...) goes the general way.
_TAGLINE = re.compile(r"(?:[ \t]*\n)*#[ \t]+[^\n]*\S[^\n]*\n(?:[ \t]*\n)+[ \t]*\*\*(?P<text>[^*\n]+?)\*\*\.?[ \t]*(?:\n[ \t]*\n|\n#{1,6}[ \t]|\n?\Z)")


def summarize(body: str) -> str:
    """The bold tagline under the title, else the first sentence of the Overview, else of the first paragraph."""
    tagline = _TAGLINE.match(body)
    if tagline is not None:
        return _first_sentence(tagline.group("text"))
    # The tagline and the Overview open the file: look at its head first (whole paragraphs).
    cut = body.find("\n\n", SUMMARY_HEAD)
    if cut > 0:
        found = _summarize(body[:cut])
        if found:
            return found
    return _summarize(body)


def _summarize(body: str) -> str:
    lines = body.splitlines()
    headings = [(i, m.group(1), m.group(2)) for i, line in enumerate(lines) if (m := _HEADING.match(line))]
    # The tagline: the first paragraph after the H1, before any other heading, wholly bold.
    start = headings[0][0] + 1 if headings and headings[0][1] == "#" else 0
    stop = next((i for i, level, _ in headings if i >= start), len(lines))
    for _, text in _paragraphs(lines[start:stop])[:1]:
        match = _BOLD_LINE.match(text.strip())
        if match and not _BOLD_KEY.match(text.strip()):
            return _first_sentence(match.group("text"))
    for index, level, title in headings:
        if level == "##" and title.strip().lower().rstrip(":") == "overview":
            end = next((i for i, lv, _ in headings if i > index and len(lv) <= 2), len(lines))
            paragraphs = _paragraphs(lines[index + 1 : end])
            if paragraphs:
                return _first_sentence(paragraphs[0][1])
    for _, text in _paragraphs(lines[start:]):
        if not _BOLD_KEY.match(text):
            return _first_sentence(text)
    return ""


def _fence_runs(body: str) -> list[tuple[int, int]]:
    """(start, end) of every run of 3+ backticks or tildes (str.find: far faster than a regex scan)."""
    runs = []
    for char in "`~":
        token = char * 3
        i = body.find(token)
        while i >= 0:
            j = i + 3
            while j < len(body) and body[j] == char:
                j += 1
            runs.append((i, j))
            i = body.find(token, j)
    runs.sort()
    return runs


def count_snippets(body: str) -> int:
    """Fenced code blocks (``` or ~~~, also indented inside lists)."""
    count = 0
    fence: str | None = None
    for start, stop in _fence_runs(body):
        line_start = body.rfind("\n", 0, start) + 1
        if body[line_start:start].strip(" \t"):
            continue  # a run of backticks inside a line is no fence
        end = body.find("\n", stop)
        rest = body[stop : end if end >= 0 else len(body)]
        marker = body[start:stop]
        if fence is None:
            fence = marker
            count += 1
        elif marker[0] == fence[0] and len(marker) >= len(fence) and not rest.strip():
            fence = None
    return count


def count_body_sources(body: str) -> int:
    """List items under a ``## Sources`` (or References) heading, for files without front matter."""
    return len(body_source_kinds(body))


_WEB_LINK = re.compile(r"\]\(\s*https?://|<https?://|(?<![(\w])https?://")
_FILE_LINK = re.compile(r"\]\(\s*[^)\s]+\.md\b")


def body_source_kinds(body: str) -> list[str]:
    """The kind of each list item under a ``## Sources`` (or References) heading: ``web`` (a
    URL), ``knowledge`` (a link to a Markdown file) or ``other``. INDEX.md and kb report count
    a file's sources with it where the file has none in its front matter."""
    kinds: list[str] = []
    inside = False
    for line in body.splitlines():
        heading = _HEADING.match(line)
        if heading and len(heading.group(1)) <= 2:
            inside = heading.group(2).strip().lower().rstrip(":") in ("sources", "references")
            continue
        if inside and _LIST_ITEM.match(line):
            kinds.append("web" if _WEB_LINK.search(line) else "knowledge" if _FILE_LINK.search(line) else "other")
    return kinds


_SECTION_NUMBER = re.compile(r"^Section\s+\d+\s*[:.\-–—]\s*", re.I)
_H2_LINE = re.compile(r"(?m)^##\s+(.+?)\s*$")


def _section_title(title: str) -> str:
    return _SECTION_NUMBER.sub("", title.strip())


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str] | None:
    """(front matter, body) for a file kb wrote (``---\\n...\\n---\\n``); None for any other shape."""
    if not text.startswith("---\n"):
        return None
    end = text.find("\n---\n", 3)
    if end < 0:
        return None
    raw = text[4 : end + 1]
    data = records_yaml.load(raw)
    if data is None:
        try:
            data = yaml.load(raw, Loader=_LOADER)
        except yaml.MarkedYAMLError as exc:
            # The marks count from the front matter's first line: say the file's line, as kb report does.
            for name in ("context_mark", "problem_mark"):
                mark = getattr(exc, name)
                if mark is not None:
                    setattr(exc, name, yaml.Mark(mark.name, mark.index, mark.line + 1, mark.column, None, None))
            raise
    if not isinstance(data, dict) or not data:
        return None
    return data, text[end + 5 :]


def _read_knowledge(path: str, text: str) -> tuple[KnowledgeMeta, str, bool]:
    """(meta, body, has front matter): records.read_knowledge's result, read faster for kb's own files."""
    split = split_front_matter(text)
    if split is None:
        doc = read_knowledge(Path(path))
        return doc.meta, doc.body, doc.has_front_matter
    data, body = split
    meta = KnowledgeMeta.from_dict(data)
    if not meta.title:
        match = _H1.search(body)
        meta.title = match.group(1) if match else PurePosixPath(path).stem
    if not meta.sections:
        meta.sections = [m.group(1).strip() for m in _H2_LINE.finditer(body)]
    return meta, body, True


def _edited_by_hand(content_hash: str | None, body: str) -> bool:
    # write_knowledge hashes the body exactly as it follows the front matter's blank line;
    # python-frontmatter strips it, so KnowledgeDoc.edited_by_hand flags every file. Accept both.
    if not content_hash:
        return False
    if body.startswith("\n") and sha256_text(body[1:]) == content_hash:
        return False  # the usual case: exactly as write_knowledge wrote it
    candidates = (body, body.strip("\n"), body.strip("\n") + "\n")
    return not any(sha256_text(c) == content_hash for c in candidates)


@dataclass(frozen=True)
class ReadOptions:
    """What a read makes besides each file's info (worker processes get a copy)."""

    blobs: bool = False  # each file's git blob (for gitpack), made of the bytes just read
    stamp: str | None = None  # drops not yet consolidated: their text stamped at this time
    # With ``blobs``: each batch stores its blobs as a pack in this folder (git's objects/pack)
    # where they are made, and its reads come back without the blob bytes.
    pack_dir: str | None = None
    knowledge_root: str = "knowledge"  # the layout's knowledge root: drops' targets are read under it


@dataclass
class Extra:
    """What a read made besides the info: never cached, used by this run only."""

    blob: PackedBlob | None = None
    stamped: bytes | None = None  # a drop's bytes with ``consolidated:`` set


PLAIN = ReadOptions()


def knowledge_info(root: Path, rel: str, want_signature: bool = True) -> dict[str, Any]:
    """What INDEX.md and the checks need from one knowledge file."""
    return read_knowledge_file(root, rel, PLAIN, want_signature)[0]


def read_knowledge_file(root: Path, rel: str, options: ReadOptions, want_signature: bool = True) -> tuple[dict[str, Any], Extra | None]:
    """:func:`knowledge_info`, plus what ``options`` ask for."""
    from kb.consolidate.similar import signature

    info, extra, body, _ = read_knowledge_parts(root, rel, options)
    if want_signature:
        info["sig"] = signature(body)
    return info, extra


def read_knowledge_parts(root: Path, rel: str, options: ReadOptions) -> tuple[dict[str, Any], Extra | None, str, Stat]:
    """(info without its signature, extra, the body to make it of, the stat of what was read):
    what every read of a knowledge file runs; a batch makes the signatures of all its bodies at once."""
    with open(os.path.join(root, rel), "rb") as handle:
        raw = handle.read()
        stat = stat_key(os.fstat(handle.fileno()))
    problems: list[str] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        line = raw.count(b"\n", 0, exc.start) + 1
        problems.append(f"{rel}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); read with replacement characters")
    if _UNCLOSED_FRONT_MATTER.match(text) and not _FRONT_MATTER_END.search(text, 3):
        problems.append(f"{rel}:1: the front matter opened on line 1 is never closed (no --- line ends it)")
    meta, body, has_fm = _read_knowledge(os.path.join(root, rel), text)
    sections = [_section_title(s) for s in meta.sections if s.strip().lower().rstrip(":") not in NON_CONTENT_SECTIONS]
    sources = len(meta.sources) or count_body_sources(body)
    info = {
        "title": " ".join(meta.title.split()) or PurePosixPath(rel).stem,
        "summary": summarize(body),
        "sections": sections,
        "sources": sources,
        "snippets": count_snippets(body),
        "plan": str(meta.plan) if meta.plan else None,
        "batch": meta.batch,
        "part": meta.part,
        "front_matter": has_fm,
        "edited": _edited_by_hand(meta.content_hash, body),
        "sig": None,
        "problems": problems,  # what makes the file broken: errors, not warnings
    }
    return info, (Extra(blob=gitpack.blob(raw)) if options.blobs else None), body, stat


_UNCLOSED_FRONT_MATTER = re.compile(r"---[ \t]*\r?\n")
_FRONT_MATTER_END = re.compile(r"\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)")


# -- drops -----------------------------------------------------------------


_PLAIN_REF = re.compile(r"knowledge/(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.md")


def knowledge_ref(value: str | None, knowledge_root: str = "knowledge", exists=None, skill_name: str | None = None) -> str | None:
    """A drop's target as a workspace-relative path under ``knowledge_root`` (None if it names
    none). A person writes it relative to the knowledge root or to the skill folder, decorated
    or not (`` `t/one.md` (740 lines) ``, a link): with ``exists`` (a workspace path -> bool)
    the reading that names an existing file wins."""
    if not value:
        return None
    text = str(value)
    prefix = "" if knowledge_root in ("", ".") else knowledge_root.rstrip("/") + "/"
    if prefix == "knowledge/" and _PLAIN_REF.fullmatch(text):
        return text  # what kb writes: already normal (no "..", ".", "//" or backslash)
    return _general_ref(text, prefix, exists, skill_name)


def _find_knowledge_ref(text: str) -> str | None:
    return _general_ref(text, "knowledge/", None, None)


def _general_ref(text: str, prefix: str, exists, skill_name: str | None) -> str | None:
    raw = drop_keys.clean_path(text)
    if raw is None:
        return None
    if "/" + prefix in raw and raw.startswith("/") and prefix:
        raw = raw.split("/" + prefix, 1)[1]
    try:
        path = relative_inside(raw, "target").as_posix()
    except PathError:
        return None
    candidates = []
    if prefix and path.startswith(prefix):
        candidates.append(path)  # relative to the skill folder
    candidates.append(prefix + path)  # relative to the knowledge root
    if skill_name and path.startswith(skill_name + "/"):
        candidates.append(prefix + path[len(skill_name) + 1 :])  # "<skill>/t/one.md"
    if exists is not None:
        for candidate in candidates:
            if exists(candidate):
                return candidate
    return candidates[0]


PLAN_BESIDE = "ingestion.md"  # the plan file of an expansion folder of the original trees


def drop_info(root: Path, rel: str) -> dict[str, Any]:
    """A drop's record, reduced to what consolidation uses."""
    return read_drop_file(root, rel, PLAIN)[0]


def read_drop_file(root: Path, rel: str, options: ReadOptions) -> tuple[dict[str, Any], Extra | None, Stat]:
    """:func:`drop_info`, plus what ``options`` ask for (its stamped bytes, their blob), and the
    stat of what was read."""
    path = os.path.join(root, rel)  # plain strings: pathlib costs more than parsing here
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
        stat = stat_key(os.fstat(handle.fileno()))
    split = split_front_matter(text)
    drop = drop_from_parts(split[0], split[1], Path(path)) if split is not None else read_drop(Path(path))
    target = knowledge_ref(drop.knowledge_file, options.knowledge_root, lambda rel: os.path.isfile(os.path.join(root, rel)), Path(root).name)
    plan = str(drop.plan) if drop.plan else None
    if plan is None and "/" in rel:
        # A drop kept beside its plan (_ingest-auto/completed/expansion-x/): that plan is its plan.
        beside = rel.rsplit("/", 1)[0] + "/" + PLAN_BESIDE
        if os.path.isfile(os.path.join(root, beside)):
            plan = beside
    info = {
        "title": drop.title,
        "plan": plan,
        "batch": drop.batch,
        "part": drop.part,
        "status": drop.status,
        "knowledge_file": target,
        "created": str(drop.created or ""),
        "consolidated": str(drop.consolidated) if drop.consolidated else None,
        "sections": len(drop.sections_written),
        "sections_empty": list(drop.sections_empty),  # marked empty: research found nothing (issue 19)
        "sections_pointing": list(drop.sections_pointing),  # filled only with a pointer to the section quoting it
        "sections_curated": list(drop.sections_curated),  # filled with a passage a reviewer chose (curation.toml)
        # The LLM writer's citation check: share of its drafted factual sentences their passages supported (issue 23).
        "support": {k: v for k, v in ((drop.research or {}).get("support") or {}).items() if k in ("rate", "sentences")},
        "snippets": drop.snippets_written,
        "front_matter": split is not None,
    }
    if options.stamp is None or info["consolidated"]:
        return info, None, stat
    stamped = with_consolidated(text, options.stamp)
    if stamped is None:
        return info, None, stat  # no ``consolidated:`` line to set: the stamp rewrites its front matter
    data = stamped.encode("utf-8")
    return info, Extra(blob=gitpack.blob(data) if options.blobs else None, stamped=data), stat


# -- reading many files -------------------------------------------------------

READ_ERRORS = (OSError, UnicodeError, ValueError, TypeError, KeyError, yaml.YAMLError)
PARALLEL_MIN = 1500  # below this, starting worker processes costs more than it saves


Read = tuple[str, Any, str | None, Extra | None, Stat | None]  # (path, info, error, extra, stat)


def read_each(rels: list[str], reader) -> list[Read]:
    """(path, info, error, extra, stat) for each file, read one after the other; ``reader(rel)``
    returns (info, extra, the stat of what it read, or None)."""
    out: list[Read] = []
    for rel in rels:
        try:
            info, extra, stat = reader(rel)
        except READ_ERRORS as exc:
            out.append((rel, None, f"{exc.__class__.__name__}: {str(exc)[:160]}", None, None))
            continue
        out.append((rel, info, None, extra, stat))
    return out


def read_batch(root: str, kind: str, rels: list[str], options: ReadOptions = PLAIN) -> list[Read]:
    """:func:`read_each` with the ``kind`` reader; what a worker process runs."""
    base = Path(root)
    if kind == "drops":
        reads = read_each(rels, lambda rel: read_drop_file(base, rel, options))
    elif kind == "knowledge":
        from kb.consolidate.similar import signatures

        # The signatures of the whole batch in one go (see similar): far cheaper than one by one.
        bodies: list[str] = []
        reads = read_each(rels, lambda rel: _with_body(read_knowledge_parts(base, rel, options), bodies))
        infos = [info for _, info, _, _, _ in reads if info is not None]
        for info, sig in zip(infos, signatures(bodies)):
            info["sig"] = sig
    elif kind == "plans":
        from kb.consolidate.plans import plan_info

        reads = read_each(rels, lambda rel: (plan_info(base, rel), None, None))
    else:
        raise ValueError(f"no reader for {kind!r}")
    if options.blobs and options.pack_dir is not None:
        store_blobs(reads, Path(options.pack_dir))
    return reads


def store_blobs(reads: list[Read], pack_dir: Path) -> int:
    """Write the blobs of ``reads`` as one pack in ``pack_dir`` and take them off the reads
    (shipping their bytes to the parent cost more than packing them here); returns how many.
    Where the pack cannot be written the reads keep their blobs, for the caller to store."""
    extras = [extra for _, _, _, extra, _ in reads if extra is not None and extra.blob is not None]
    if not extras:
        return 0
    try:
        gitpack.write_pack(pack_dir, [extra.blob for extra in extras])
    except OSError:
        return 0
    for extra in extras:
        extra.blob = None
    return len(extras)


def _with_body(read: tuple[dict[str, Any], Extra | None, str, Stat], bodies: list[str]) -> tuple[dict[str, Any], Extra | None, Stat]:
    info, extra, body, stat = read
    bodies.append(body)
    return info, extra, stat


CHUNK = 500  # files per task handed to a worker
# Where the workers write packs (one per task), a kind's files go in at most this many tasks:
# git repacks everything by itself once a repository holds 50 packs (gc.autoPackLimit).
PACK_TASKS = 8


def pool_size() -> int:
    """How many worker processes :func:`worker_pool` starts."""
    return min(os.cpu_count() or 1, 8)


@contextlib.contextmanager
def worker_pool(files: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes for reading ``files`` files (and for work that follows, such as
    applying a stamp journal), or None when there are too few to pay for starting them."""
    workers = pool_size()
    if files < PARALLEL_MIN or workers < 2:
        yield None
        return
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    importlib.import_module("kb.consolidate.similar")  # numpy: imported once here, not once per worker

    # fork is cheapest, but only safe while this process runs no other thread (a progress
    # spinner, say); otherwise a fork server that has imported the readers once. With fork
    # the workers are all started by the first submit: submit before starting any thread.
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
    elif "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["kb.forkserver_lifeline", "kb.consolidate.scan", "kb.consolidate.similar"])
    else:
        context = multiprocessing.get_context("spawn")
    # A kb killed with SIGKILL runs no clean-up: each worker dies with the process that made it.
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent) as pool:
        yield pool


def read_kinds(root: Path, requests: list[tuple[str, list[str], ReadOptions]], pool: ProcessPoolExecutor | None) -> Iterator[list[Read]]:
    """The reads of each ``(kind, paths, options)`` request, yielded in turn. With a pool every
    request is handed to it at once, so while the caller works on the first kind's results
    the workers already read the next kind."""
    if pool is None:
        for kind, rels, options in requests:
            yield read_batch(str(root), kind, rels, options)
        return
    pending = []
    for kind, rels, options in requests:
        size = max(CHUNK, -(-len(rels) // PACK_TASKS)) if options.pack_dir is not None else CHUNK
        pending.append([pool.submit(read_batch, str(root), kind, rels[i : i + size], options) for i in range(0, len(rels), size)])
    for futures in pending:
        yield [item for future in futures for item in future.result()]
