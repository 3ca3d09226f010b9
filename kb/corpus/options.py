"""A configuration module's options, documented by the comments above them, as corpus documents.

Some modules document their settings only in comments (``torch._inductor.config``:
``# enable slow autotuning passes to select algorithms`` above ``max_autotune = ...``).
For a module kb.toml includes explicitly, every top-level assignment (and every one in a
top-level class, ``triton.cudagraphs``) with a comment right above it becomes a document
of its own, located at ``module.name``: its assignment as written (the default) and the
comment. One document per option keeps the researcher's relevance tests honest: title
words spread over unrelated options of one big document would prove nothing.
"""

from __future__ import annotations

import ast
import inspect
import re

from kb.corpus.documents import CorpusDoc, is_test_name

SOURCE_SUFFIX = "source comments"  # CorpusDoc.source ends so: the writer says "comments", not "docstring"
MAX_DEFAULT = 80
MIN_COMMENT_CHARS = 12


def _comment_above(lines: list[str], lineno: int) -> str:
    """The ``#`` lines directly above line ``lineno`` (1-based), joined; "" when there are none."""
    out: list[str] = []
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        out.append(lines[i].strip().lstrip("#").strip())
        i -= 1
    text = " ".join(reversed(out))
    text = re.sub(r"\s+", " ", text).strip()
    if text.lower().startswith(("todo", "fixme", "noqa", "type:", "pyre", "mypy")):
        return ""
    return text


def _options(body: list[ast.stmt], lines: list[str], source: str, prefix: str = "") -> list[tuple[str, str, str]]:
    """(option name, its assignment as written, its comment) for each commented, public assignment in ``body``."""
    out = []
    for node in body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        else:
            continue
        if name.startswith("_") or name.isupper():  # private helpers and module constants are not options
            continue
        comment = _comment_above(lines, node.lineno)
        if len(comment) < MIN_COMMENT_CHARS:
            continue
        default = ast.get_source_segment(source, value) or ""
        shown = f"{prefix}{name} = {default}" if default and "\n" not in default and len(default) <= MAX_DEFAULT else ""
        out.append((prefix + name, shown, comment))
    return out


def _doc(locator: str, assignment: str, comment: str, source: str) -> dict:
    # The assignment reads like a signature (the writer shows it first); the comment is the prose.
    blocks = [f"`{assignment}`"] if assignment and "`" not in assignment else []
    return CorpusDoc(kind="doc", locator=locator, title=locator, text="\n\n".join([*blocks, comment]),
                     source=f"{source} {SOURCE_SUFFIX}", keywords=locator).to_json()


def option_docs(module, locator: str, source: str) -> list[dict]:
    """One document per commented option of ``module`` (none when it has no such options or no source)."""
    try:
        text = inspect.getsource(module)
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError, ValueError):
        return []
    lines = text.splitlines()
    found = _options(tree.body, lines, text)
    for node in tree.body:
        # class triton: cudagraphs = ... (not a class of options for torch's own tests: test_configs)
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and not is_test_name(node.name):
            found += _options(node.body, lines, text, prefix=f"{node.name}.")
    return [_doc(f"{locator}.{name}", assignment, comment, source) for name, assignment, comment in found]
