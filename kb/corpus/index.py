"""The corpus index: BM25 (bm25s) over every corpus document, kept under ``.kb/corpus/``.

The index directory is named by a fingerprint of its inputs (package versions
and locations, the files' sizes and mtimes, the corpus config, kb's own corpus
code), so it is rebuilt exactly when one of them changes. Package docstrings,
the slow part, are cached on their own: a new knowledge file costs a re-index,
not a re-import of torch. Builds happen in a temporary folder renamed into
place, under a file lock, so a crash or a second process never sees half an index.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
from filelock import FileLock

from kb.corpus.docstrings import extract_in_subprocess, package_origin, package_version
from kb.corpus.documents import CorpusDoc
from kb.corpus.markdown import markdown_docs, read_markdown, text_docs
from kb.corpus.tokenize import tokenize
from kb.errors import ConfigError, PathError
from kb.fsutil import atomic_write_text

FORMAT = 1
MARKDOWN = {".md", ".markdown"}
TEXT = {".txt", ".rst"}
DEPRECATED_WEIGHT = 0.4  # deprecated APIs rank below their replacements
EXTRACT_BUDGET_S = 60.0
_CODE_FILES = ("docstrings.py", "rst.py", "markdown.py", "tokenize.py", "index.py", "documents.py", "options.py")

Progress = Callable[[str], None]
_ARGUMENT = re.compile(r"^- `(\w+)`", re.M)  # how kb.corpus.rst writes a documented argument or attribute


@dataclass
class Hit:
    doc: CorpusDoc
    score: float
    index: int


@dataclass
class CorpusInputs:
    """What the index is built from, and everything its fingerprint covers."""

    knowledge: list[tuple[Path, str]] = field(default_factory=list)  # (file, workspace-relative path)
    folders: list[tuple[Path, str]] = field(default_factory=list)
    packages: list[dict] = field(default_factory=list)  # name, version, origin, mtime
    config: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        def stat(path: Path) -> list:
            st = path.stat()
            return [st.st_size, st.st_mtime_ns]

        data = {
            "format": FORMAT,
            "code": _code_hash(),
            "config": self.config,
            "packages": self.packages,
            "files": [[rel, *stat(p)] for p, rel in [*self.knowledge, *self.folders]],
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _code_hash() -> str:
    """kb's own corpus code: a new kb version must not reuse an index built the old way."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _CODE_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def _files(folder: Path, suffixes: set[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def gather_inputs(workspace) -> CorpusInputs:
    """The files and packages the workspace's corpus is made of (kb.toml ``[corpus]``)."""
    cfg = workspace.config.corpus
    inputs = CorpusInputs(config=cfg.model_dump())
    root = workspace.root
    if cfg.include_knowledge and workspace.knowledge_dir.is_dir():
        if workspace.default_layout:
            inputs.knowledge = [(p, workspace.rel(p)) for p in _files(workspace.knowledge_dir, MARKDOWN)]
        else:  # an adopted layout: its knowledge files only, not its drops, plans, .kb/ or a site
            inputs.knowledge = [(root / rel, rel) for rel in workspace.knowledge_files(tuple(MARKDOWN))]
    for folder in cfg.folders:
        try:
            path = workspace.inside(root / folder, "[corpus].folders entry")
        except PathError as exc:
            raise ConfigError(f"kb.toml: {exc}") from None
        if not path.is_dir():
            inputs.warnings.append(f"corpus folder {folder!r} does not exist; nothing indexed from it")
            continue
        inputs.folders += [(p, workspace.rel(p)) for p in _files(path, MARKDOWN | TEXT)]
    for name in cfg.packages:
        origin = package_origin(name)
        if origin is None:
            inputs.warnings.append(f"package {name!r} is not installed; its documentation is not indexed")
            continue
        inputs.packages.append({"name": name, "version": package_version(name), "origin": origin,
                                "mtime": Path(origin).stat().st_mtime_ns if Path(origin).exists() else 0,
                                "include": [p for p in cfg.include if p.startswith(name + ".")]})
    return inputs


def _index_text(doc: CorpusDoc) -> str:
    # The name counts twice: a query naming an API should find that API's own docstring first.
    return "\n".join([doc.keywords, doc.keywords, doc.title, doc.text, *doc.examples])


class CorpusIndex:
    """BM25 over corpus documents, with per-term scores for the researcher's relevance tests."""

    def __init__(self, docs: list[CorpusDoc], retriever: bm25s.BM25, info: dict | None = None):
        self.docs = docs
        self.retriever = retriever
        self.info = info or {}
        self._vocab: dict[str, int] = retriever.vocab_dict
        indptr = np.asarray(retriever.scores["indptr"])
        self._df = np.diff(indptr)
        self._weights = np.array([DEPRECATED_WEIGHT if d.deprecated else 1.0 for d in docs], dtype=np.float32)
        self._term_cache: dict[str, np.ndarray] = {}
        self._names: tuple[dict[str, list[int]], dict[str, list[int]]] | None = None
        self._locators: dict[str, int] | None = None
        self._arguments: dict[str, list[int]] | None = None

    # -- building and persistence -------------------------------------------------
    @classmethod
    def build(cls, docs: list[CorpusDoc], info: dict | None = None) -> "CorpusIndex":
        if not docs:  # bm25s needs a vocabulary; an empty corpus still answers (with nothing)
            docs_tokens = [["__empty__"]]
        else:
            docs_tokens = [tokenize(_index_text(d)) or ["__empty__"] for d in docs]
        retriever = bm25s.BM25()
        retriever.index(docs_tokens, show_progress=False)
        return cls(docs, retriever, info)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(folder), show_progress=False)
        with open(folder / "docs.jsonl", "w", encoding="utf-8") as handle:
            for doc in self.docs:
                handle.write(json.dumps(doc.to_json(), ensure_ascii=False) + "\n")
        (folder / "info.json").write_text(json.dumps(self.info, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "CorpusIndex":
        retriever = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        with open(folder / "docs.jsonl", encoding="utf-8") as handle:
            docs = [CorpusDoc.from_json(json.loads(line)) for line in handle if line.strip()]
        info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
        return cls(docs, retriever, info)

    # -- scoring ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.docs)

    def idf(self, term: str) -> float:
        """BM25 (Lucene) idf of a term; 0 for a term the corpus does not have."""
        tid = self._vocab.get(term)
        if tid is None or not self.docs:
            return 0.0
        df = float(self._df[tid])
        return math.log(1 + (len(self.docs) - df + 0.5) / (df + 0.5))

    def max_idf(self) -> float:
        """The idf of a term found in one document: what a never-seen name would weigh."""
        n = len(self.docs)
        return math.log(1 + (n - 1 + 0.5) / 1.5) if n else 0.0

    def known(self, term: str) -> bool:
        return term in self._vocab and bool(self.docs)

    def term_scores(self, term: str) -> np.ndarray:
        """BM25 contribution of one term to every document (deprecation already weighed in)."""
        cached = self._term_cache.get(term)
        if cached is None:
            if not self.known(term):
                cached = np.zeros(len(self.docs), dtype=np.float32)
            else:
                cached = np.asarray(self.retriever.get_scores([term]), dtype=np.float32)[: len(self.docs)] * self._weights
            self._term_cache[term] = cached
        return cached

    def score(self, weights: dict[str, float]) -> np.ndarray:
        """Weighted sum of per-term BM25 scores over all documents."""
        total = np.zeros(len(self.docs), dtype=np.float32)
        for term, weight in weights.items():
            if weight:
                total += weight * self.term_scores(term)
        return total

    def at(self, locator: str) -> int | None:
        """The document whose locator is exactly ``locator`` (None when the corpus has none)."""
        if self._locators is None:
            self._locators = {d.locator: i for i, d in enumerate(self.docs)}
        return self._locators.get(locator)

    def named(self, name: str) -> list[int]:
        """Documents an API name points at: a full path or alias first, else a last component (shortest path first)."""
        if self._names is None:
            exact: dict[str, list[int]] = {}
            last: dict[str, list[int]] = {}
            for i, doc in enumerate(self.docs):
                if doc.kind != "doc":
                    continue
                for path in dict.fromkeys([doc.locator, *doc.keywords.split()]):
                    exact.setdefault(path, []).append(i)
                    last.setdefault(path.rsplit(".", 1)[-1], []).append(i)
            self._names = (exact, last)
        exact, last = self._names
        found = exact.get(name) or last.get(name.rsplit(".", 1)[-1] if "." not in name else name) or []
        return sorted(dict.fromkeys(found), key=lambda i: (self.docs[i].locator.count("."), len(self.docs[i].locator)))

    def documenting(self, argument: str) -> list[int]:
        """Documents that describe an argument or attribute called ``argument`` (``- `pin_memory` ...``)."""
        if self._arguments is None:
            table: dict[str, list[int]] = {}
            for i, doc in enumerate(self.docs):
                if doc.kind == "doc":
                    for name in dict.fromkeys(_ARGUMENT.findall(doc.text)):
                        table.setdefault(name, []).append(i)
            self._arguments = table
        return self._arguments.get(argument, [])

    def argument_names(self) -> list[str]:
        """Every documented argument or attribute name (see :meth:`documenting`)."""
        self.documenting("")
        return list(self._arguments or {})

    def mask(self, exclude: Iterable[str]) -> np.ndarray:
        """1 for documents whose locator does not start with any of ``exclude``, else 0."""
        prefixes = tuple(exclude)
        return np.array([0.0 if prefixes and d.locator.startswith(prefixes) else 1.0 for d in self.docs],
                        dtype=np.float32)

    def search(self, query: str, k: int = 10, *, exclude: Iterable[str] = ()) -> list[Hit]:
        """The ``k`` best documents for a free-text query."""
        weights: dict[str, float] = {}
        for term in tokenize(query):
            weights[term] = weights.get(term, 0.0) + 1.0
        scores = self.score(weights) * self.mask(exclude)
        return self.top(scores, k)

    def top(self, scores: np.ndarray, k: int) -> list[Hit]:
        if not len(self.docs):
            return []
        k = min(k, len(self.docs))
        order = np.argsort(-scores, kind="stable")[:k]
        return [Hit(self.docs[i], float(scores[i]), int(i)) for i in order if scores[i] > 0]


def collect_docs(workspace, inputs: CorpusInputs, cache_dir: Path, progress: Progress | None = None) -> list[CorpusDoc]:
    """Every corpus document: knowledge sections, folder files, package docstrings (cached per package)."""
    docs: list[CorpusDoc] = []
    for path, rel in inputs.knowledge:
        meta, _ = read_markdown(path)
        if str(meta.get("engine") or "") == "offline":
            continue  # quotes of this same corpus: indexing them would only echo it back
        docs += markdown_docs(path, rel, "knowledge")
    for path, rel in inputs.folders:
        docs += markdown_docs(path, rel, "folder") if path.suffix.lower() in MARKDOWN else text_docs(path, rel, "folder")
    for pkg in inputs.packages:
        key = hashlib.sha256(json.dumps([pkg, _code_hash()], sort_keys=True).encode()).hexdigest()[:12]
        cached = cache_dir / f"{pkg['name']}-{pkg['version']}-{key}.jsonl"
        if not cached.exists():
            if progress:
                progress(f"reading the docstrings of {pkg['name']} {pkg['version'] or ''}".strip())
            extract_in_subprocess(pkg["name"], cached, EXTRACT_BUDGET_S, pkg.get("include") or ())
        with open(cached, encoding="utf-8") as handle:
            docs += [CorpusDoc.from_json(json.loads(line)) for line in handle if line.strip()]
    return docs


def load_corpus(workspace, *, progress: Progress | None = None, rebuild: bool = False) -> CorpusIndex:
    """The workspace's corpus index, from ``.kb/corpus/`` when its inputs are unchanged, else rebuilt."""
    inputs = gather_inputs(workspace)
    fp = inputs.fingerprint()
    base = workspace.state_dir / "corpus"
    final = base / f"index-{fp[:20]}"
    if not rebuild and (final / "info.json").exists():
        index = CorpusIndex.load(final)
        index.info["warnings"] = inputs.warnings
        return index
    base.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base / "build.lock")):
        if not rebuild and (final / "info.json").exists():  # another process built it while we waited
            index = CorpusIndex.load(final)
            index.info["warnings"] = inputs.warnings
            return index
        if progress:
            progress("building the local corpus index")
        docs = collect_docs(workspace, inputs, base / "packages", progress)
        info = {
            "fingerprint": fp,
            "documents": len(docs),
            "packages": {p["name"]: p["version"] for p in inputs.packages},
            # Files whose text is indexed: the offline engine's own outputs are not (they quote this corpus).
            "knowledge_files": len({d.locator.split("#", 1)[0] for d in docs if d.kind == "knowledge"}),
            "folder_files": len(inputs.folders),
        }
        index = CorpusIndex.build(docs, info)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
        try:
            index.save(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in base.glob("index-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        atomic_write_text(base / "current.json", json.dumps(info, indent=1) + "\n")
    index.info["warnings"] = inputs.warnings
    return index
