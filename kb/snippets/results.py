"""snippets/: the extracted snippet files, results.json (the contract others read) and JUnit XML."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from kb.fsutil import atomic_write_text
from kb.snippets.tasks import Entry
from kb.workspace import Workspace

RESULTS_REL = "snippets/results.json"
STATUSES = ("pass", "defines-only", "fail", "fragment", "skip", "timeout", "error", "not-executable")
FAILING = {"fail", "timeout", "error"}
# Statuses JUnit reports as skipped: nothing was tested (defines-only ran, but only defined things).
NOT_TESTED = {"skip", "not-executable", "fragment", "defines-only"}
_SNIPPET_NAME = re.compile(r"^\d{2,}-L\d+\.(py|sh)$")
_EXT = {"python": "py", "shell": "sh"}


def empty_document() -> dict:
    return {"version": 1, "generated": None, "environment": {}, "isolation": {}, "snippets": []}


def load_results(workspace: Workspace | Path) -> dict:
    """snippets/results.json as a dict; the empty document when there is none or it is unreadable."""
    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    try:
        data = json.loads((root / RESULTS_REL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty_document()
    if not isinstance(data, dict) or not isinstance(data.get("snippets"), list):
        return empty_document()
    for key, value in empty_document().items():
        data.setdefault(key, value)
    return data


@functools.lru_cache(maxsize=4096)  # asked for every snippet and every file found beside them
def snippet_dir(file: str, prefix: str = "knowledge/") -> str:
    """snippets/<path under the knowledge root without .md>/ for a workspace-relative Markdown path
    (``prefix``: the layout's knowledge root, "" where it is the workspace); _outside/ for others."""
    rel = PurePosixPath(file)
    if prefix and file.startswith(prefix):
        rel = PurePosixPath(file[len(prefix):])
    elif not (prefix == "" and len(rel.parts) > 1):
        rel = PurePosixPath("_outside", rel)
    return str(PurePosixPath("snippets", rel.with_suffix("")))


def snippet_file(entry: Entry, prefix: str = "knowledge/") -> str | None:
    ext = _EXT.get(entry.snippet.kind or "")
    if ext is None:
        return None
    return f"{snippet_dir(entry.file, prefix)}/{entry.snippet.index:02d}-L{entry.snippet.line}.{ext}"


def same_results(previous: dict, document: dict) -> bool:
    """Whether ``document`` says what ``previous`` (results.json as read) says, its time aside: then
    results.json is left as it is (a rerun with nothing new writes nothing)."""
    return all(previous.get(k) == v for k, v in document.items() if k != "generated")


def entry_json(entry: Entry, fingerprint: str, prefix: str = "knowledge/") -> dict:
    """One element of results.json's "snippets" list."""
    s = entry.snippet
    return {
        "id": entry.id,
        "file": entry.file,
        "line": s.line,
        "index": s.index,
        "language": s.language,
        "hash": s.hash,
        "status": entry.status,
        "reason": entry.reason,
        "seconds": round(entry.seconds, 4),
        "peak_memory_mb": entry.peak_memory_mb,
        "environment": fingerprint,
        "stdout_tail": entry.stdout_tail,
        "stderr_tail": entry.stderr_tail,
        "snippet_file": snippet_file(entry, prefix),
        # additions beyond the contract
        "requires": entry.requirements.tokens(),
        "inferred": list(entry.requirements.why),
        "continues": entry.continues,
        "cached": entry.cached,
        "wall_seconds": None if entry.wall_seconds is None else round(entry.wall_seconds, 4),
    }


def build_document(entries: list[Entry], environment: dict, isolation: dict, previous: dict, replaced: set[str], root: Path,
                   rows: list[dict] | None = None) -> dict:
    """This run's entries (``rows``: already as JSON rows) plus earlier entries of files this run did not look at (when they still exist)."""
    fingerprint = environment.get("fingerprint", "")
    kept = [
        e for e in previous.get("snippets", [])
        if isinstance(e, dict) and e.get("file") not in replaced and (root / str(e.get("file", ""))).is_file()
    ]
    rows = kept + (rows if rows is not None else [entry_json(e, fingerprint) for e in entries])
    rows.sort(key=lambda e: (str(e.get("file")), int(e.get("line") or 0)))
    return {
        "version": 1,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment,
        "isolation": isolation,
        "summary": {s: sum(1 for e in rows if e.get("status") == s) for s in STATUSES},
        "snippets": rows,
    }


def _header(entry: Entry) -> str:
    mark = "#"
    where = f"{entry.file} line {entry.snippet.line}"
    extra = f" (kb:continue of line {entry.continues})" if entry.continues else ""
    return f"{mark} From {where}{extra}. Written by kb validate-snippets: edit the Markdown, not this file.\n"


def write_snippet_files(root: Path, entries: list[Entry], files: list[str], written: dict[str, list] | None = None,
                        prefix: str = "knowledge/") -> tuple[int, bool]:
    """Write each runnable-language snippet as a file; drop stale ones of these Markdown files.

    Returns (files written, whether ``written`` changed).

    ``written`` (kept by the caller between runs): file -> [mtime_ns, size, digest] as kb last wrote it.
    A file whose stat and wanted text match it is left alone unread, so a warm rerun reads nothing."""
    written = {} if written is None else written
    wanted: dict[str, str] = {}
    for entry in entries:
        rel = snippet_file(entry, prefix)
        if rel:
            wanted[rel] = _header(entry) + entry.snippet.code
    count, changed = 0, False
    base = str(root)
    for rel, text in wanted.items():
        path = os.path.join(base, rel)
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()
        known = written.get(rel)
        try:
            stat = os.stat(path)
            if known and known == [stat.st_mtime_ns, stat.st_size, digest]:
                continue  # as kb wrote it, and still what it would write
            with open(path, encoding="utf-8") as handle:
                same = handle.read() == text
            if same:
                written[rel] = [stat.st_mtime_ns, stat.st_size, digest]
                changed = True
                continue  # unchanged: no write, so a warm rerun touches nothing
        except OSError:
            pass
        atomic_write_text(Path(path), text)
        stat = os.stat(path)
        written[rel] = [stat.st_mtime_ns, stat.st_size, digest]
        count += 1
        changed = True
    for file in files:
        folder = snippet_dir(file, prefix)
        try:
            items = list(os.scandir(os.path.join(base, folder)))
        except OSError:
            continue
        for item in items:
            rel = f"{folder}/{item.name}"
            if _SNIPPET_NAME.match(item.name) and rel not in wanted and item.is_file():
                os.unlink(item.path)
                changed = changed or written.pop(rel, None) is not None
    return count, changed


def _no_default(value):
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _row_encoder():
    """json.dumps(row, ensure_ascii=False) for many rows: json's C encoder made once, not per row
    (the per-call set-up is most of the cost of a small row)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return lambda row: json.dumps(row, ensure_ascii=False)
    iterencode = make(None, _no_default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda row: "".join(iterencode(row, 0))


def results_text(document: dict) -> str:
    """results.json's text: the header indented, then one line per snippet (diffable, and written
    by json's C encoder: indenting 15,000 rows takes the pure-Python one and seconds)."""
    head = {k: v for k, v in document.items() if k != "snippets"}
    rows = document.get("snippets") or []
    text = json.dumps(head, indent=1, ensure_ascii=False)
    encode = _row_encoder()
    body = ",\n".join(encode(row) for row in rows)
    return text[:-2] + ',\n "snippets": [\n' + body + ("\n" if rows else "") + " ]\n}\n"


def write_results(root: Path, document: dict) -> None:
    text = results_text(document)
    path = root / RESULTS_REL
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    atomic_write_text(path, text)


def junit_xml(document: dict, rows: list[dict]) -> str:
    """JUnit XML for CI: one testsuite per Markdown file, one testcase per snippet."""
    suites = ET.Element("testsuites", name="kb validate-snippets")
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    for file, items in by_file.items():
        suite = ET.SubElement(
            suites, "testsuite", name=file, tests=str(len(items)),
            failures=str(sum(r["status"] == "fail" for r in items)),
            errors=str(sum(r["status"] in ("error", "timeout") for r in items)),
            skipped=str(sum(r["status"] in NOT_TESTED for r in items)),
            time=f"{sum(float(r.get('seconds') or 0) for r in items):.3f}",
        )
        classname = re.sub(r"[^A-Za-z0-9_]+", ".", file.removesuffix(".md")).strip(".")
        for row in items:
            case = ET.SubElement(suite, "testcase", name=f"L{row['line']}", classname=classname, time=f"{float(row.get('seconds') or 0):.3f}")
            status, reason = row["status"], row.get("reason") or ""
            if status == "fail":
                ET.SubElement(case, "failure", message=reason or "failed").text = row.get("stderr_tail") or ""
            elif status in ("error", "timeout"):
                ET.SubElement(case, "error", message=reason or status, type=status).text = row.get("stderr_tail") or ""
            elif status in NOT_TESTED:
                message = reason or status
                if status in ("fragment", "defines-only"):
                    message = f"{status}: {message}"
                ET.SubElement(case, "skipped", message=message)
            if row.get("stdout_tail"):
                ET.SubElement(case, "system-out").text = row["stdout_tail"]
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(path: Path, document: dict, rows: list[dict]) -> None:
    atomic_write_text(Path(path), junit_xml(document, rows))
