"""The static site's search index: compact postings in shards a search page loads only as a query needs them.

``_static/search/index.js``  the files (page, title), each section's file and length, the shard counts;
``_static/search/t<k>.js``   postings of the terms that hash to k: term -> [doc gap, count, doc gap, count ...];
``_static/search/d<k>.js``   the sections of docs k*DOCS_PER_SHARD...: [anchor, heading, excerpt].

A query loads the index, one term shard per query word and the doc shards of its best hits, so the
site's search costs what the tree's words cost, not a copy of its text. Words are counted here the
way search.js splits a query (letters, digits and '_', two or more, lower case, stop words out), and
scored there with BM25 as before (heading three times, the file's title, the section's text).
Files are written only when their bytes changed, so an incremental build rewrites few of them.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections import Counter
from pathlib import Path

from kb.corpus.tokenize import STOPWORDS
from kb.fsutil import atomic_write_bytes
from kb.serve.search import Section, plain

FOLDER = "_static/search"
WORD = re.compile(r"[^\W]{2,}")  # search.js: /[\p{L}\p{N}_]{2,}/gu
DOCS_PER_SHARD = 500
POSTINGS_PER_SHARD = 40_000
EXCERPT = 160


def words(text: str) -> list[str]:
    """The words of ``text`` as search.js finds them in a query."""
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


def section_record(section: Section) -> list:
    """What the index keeps of a section: [anchor, heading, excerpt, {word: count}, length in words]."""
    tokens = words(" ".join((section.heading, section.heading, section.heading, section.file_title, section.text)))
    # The excerpt needs the section's start only: thinned out, a few times its length is plenty.
    text = plain(section.text[: EXCERPT * 4])
    if len(text) <= EXCERPT and len(section.text) > EXCERPT * 4:
        text = plain(section.text)
    excerpt = text if len(text) <= EXCERPT else text[:EXCERPT].rsplit(" ", 1)[0] + " …"
    return [section.anchor, section.heading, excerpt, dict(Counter(tokens)), len(tokens)]


def term_shard(term: str, shards: int) -> int:
    """FNV-1a over the term's UTF-16 code units, as search.js computes it."""
    h = 0x811C9DC5
    data = term.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h % shards


def _script(name: str, payload: object) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f'(window.KB_SEARCH_PARTS=window.KB_SEARCH_PARTS||{{}})["{name}"]={data};\n'.encode("utf-8")


def index_files(files: list[tuple[str, str, list[list]]]) -> dict[str, bytes]:
    """The index's files (path under the site -> bytes) for ``files``: (page, title, section records)."""
    doc_file: list[int] = []
    doc_len: list[int] = []
    doc_show: list[list[str]] = []
    docs: dict[str, list[int]] = {}
    tfs: dict[str, list[int]] = {}
    for f, (page, _, records) in enumerate(files):
        for anchor, heading, excerpt, counts, length in records:
            doc = len(doc_file)
            doc_file.append(f)
            doc_len.append(length)
            doc_show.append([anchor, heading, excerpt])
            for term, count in counts.items():
                try:
                    docs[term].append(doc)
                    tfs[term].append(count)
                except KeyError:
                    docs[term] = [doc]
                    tfs[term] = [count]
    postings: dict[str, list[int]] = {}
    for term, ids in docs.items():
        gaps = [ids[0], *map(operator.sub, ids[1:], ids)]
        pairs = [0] * (2 * len(ids))
        pairs[0::2] = gaps
        pairs[1::2] = tfs[term]
        postings[term] = pairs
    total = sum(len(p) for p in postings.values()) // 2
    shards = max(1, math.ceil(total / POSTINGS_PER_SHARD))
    by_shard: list[dict[str, list[int]]] = [{} for _ in range(shards)]
    for term, plist in postings.items():
        by_shard[term_shard(term, shards)][term] = plist
    out: dict[str, bytes] = {}
    for k, part in enumerate(by_shard):
        out[f"{FOLDER}/t{k}.js"] = _script(f"t{k}", part)
    doc_shards = max(1, math.ceil(len(doc_show) / DOCS_PER_SHARD))
    for k in range(doc_shards):
        out[f"{FOLDER}/d{k}.js"] = _script(f"d{k}", doc_show[k * DOCS_PER_SHARD : (k + 1) * DOCS_PER_SHARD])
    out[f"{FOLDER}/index.js"] = _script("index", {
        "files": [[page, title] for page, title, _ in files],
        "docFile": doc_file,
        "docLen": doc_len,
        "termShards": shards,
        "docsPerShard": DOCS_PER_SHARD,
    })
    return out


def write_index(out: Path, files: list[tuple[str, str, list[list]]]) -> tuple[list[str], list[str]]:
    """Write the index under ``out``; returns (every path it has, the paths whose bytes changed)."""
    paths, changed = [], []
    for rel, data in index_files(files).items():
        paths.append(rel)
        target = out / rel
        try:
            same = target.read_bytes() == data
        except OSError:
            same = False
        if not same:
            atomic_write_bytes(target, data, durable=False)  # as the pages are: a site, rebuilt at will
            changed.append(rel)
    return paths, changed
