"""Everything kb reads from a snippet without running it: its shape and its requirements, parsed once.

Both depend on the snippet's text only (info string and code), so they are kept by snippet hash
(``AnalysisCache`` in cache.py): an unchanged tree is not parsed again.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kb.snippets.extract import Snippet
from kb.snippets.requirements import Requirements, infer
from kb.snippets.shape import Shape, read_shape

# Bumped whenever what analyze() reads changes: older cached analyses are then read again.
ANALYSIS_VERSION = 1
# The modules whose rules decide an analysis: a cache made by other rules (an upgraded kb) is not reused.
_RULES = ("analysis.py", "shape.py", "requirements.py", "extract.py", "options.py")


@functools.cache
def analysis_key() -> str:
    """What a cached analysis must have been made with: this version, these rules, this Python (its parser and builtins)."""
    digest = hashlib.blake2b(digest_size=8)
    for name in _RULES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return f"{ANALYSIS_VERSION}:{digest.hexdigest()}:{sys.version}"


@dataclass
class Analysis:
    requirements: Requirements = field(default_factory=Requirements)
    shape: Shape = field(default_factory=Shape)

    def as_dict(self) -> dict:
        return {"requirements": self.requirements.as_dict(), "shape": self.shape.as_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Analysis:
        return cls(Requirements.from_dict(data["requirements"]), Shape.from_dict(data["shape"]))


def analyze(snippet: Snippet) -> Analysis:
    """Shape (Python snippets only) and requirements of one snippet."""
    if snippet.kind != "python":
        return Analysis(requirements=infer(snippet))
    try:
        tree = ast.parse(snippet.code)
    except (SyntaxError, ValueError):
        tree = None
    shape = read_shape(snippet.code, tree)
    return Analysis(requirements=infer(snippet, tree=tree, shape=shape), shape=shape)
