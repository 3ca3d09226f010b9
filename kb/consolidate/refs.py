"""Resolve what plans point at (Step 0 reads, CITE references) against the knowledge root.

CITE references are prefixes of knowledge paths: ``cuda/06 (PyTorch)`` means a file in
knowledge/cuda/ whose name starts with ``06``; ``distributed-training/00,03`` names two;
``training-llms/`` names the folder. Text in parentheses is a note, never a path.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Callable

from kb.errors import PathError
from kb.fsutil import relative_inside

_PARENS = re.compile(r"\([^()]*\)")
_SPLIT = re.compile(r"[\s;]+|,\s+")


class KnowledgeIndex:
    """The knowledge tree's files, relative to the knowledge root, for reference lookups.
    ``prefix``: the root as a prefix of workspace paths (the layout's; "" where it is the workspace)."""

    def __init__(self, knowledge_paths: list[str] | set[str], prefix: str = "knowledge/"):
        self.prefix = prefix
        self.files: set[str] = set()
        self.by_folder: dict[str, list[str]] = defaultdict(list)
        self.folders: set[str] = set()
        for rel in knowledge_paths:
            inner = rel[len(prefix) :] if prefix and rel.startswith(prefix) else rel
            self.files.add(inner)
            folder, _, name = inner.rpartition("/")
            self.by_folder[folder].append(name)
            parts = folder.split("/") if folder else []
            for i in range(1, len(parts) + 1):
                self.folders.add("/".join(parts[:i]))

    def _inner(self, path: str) -> str:
        path = path.strip().strip("`'\"").replace("\\", "/")
        while path.startswith("./"):
            path = path[2:]
        # Plans may name a file with the root's folder in front (knowledge/io/x.md means io/x.md).
        for prefix in {self.prefix, "knowledge/"} - {""}:
            if path.startswith(prefix):
                return path[len(prefix) :]
        return path

    def has_file(self, path: str) -> bool:
        inner = self._inner(path)
        return inner in self.files or inner.rstrip("/") in self.folders

    def has_prefix(self, folder: str, prefix: str) -> bool:
        names = self.by_folder.get(folder, [])
        return any(name == prefix or name.startswith(prefix) for name in names)

    def missing_cites(self, ref: str) -> list[str]:
        """The path-like parts of one CITE reference that match no file (empty when all resolve)."""
        missing: list[str] = []
        for token in _SPLIT.split(_PARENS.sub(" ", ref)):
            token = token.strip().strip("`'\".,")
            if "/" not in token or "://" in token or token.startswith("/"):
                continue  # not a knowledge path: free text, a URL, or an absolute path
            inner = self._inner(token)
            folder, _, rest = inner.rpartition("/")
            if not rest:
                if inner.rstrip("/") not in self.folders:
                    missing.append(token)
                continue
            if rest.endswith(".md"):
                if inner not in self.files:
                    missing.append(token)
                continue
            for piece in rest.split(","):
                piece = piece.strip()
                if piece and not self.has_prefix(folder, piece):
                    missing.append(f"{folder}/{piece}" if folder else piece)
        return missing


def read_is_missing(index: KnowledgeIndex, path: str, exists: Callable[[str], bool]) -> bool:
    """A Step 0 read names no knowledge file (nor any other file inside the workspace, as
    ``exists`` says of a workspace-relative path)."""
    if index.has_file(path):
        return False
    try:
        rel = relative_inside(path.strip().strip("`'\""), "read")
    except PathError:
        return True
    return not exists(rel.as_posix())
