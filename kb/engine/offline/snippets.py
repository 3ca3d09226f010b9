"""Documentation examples as fenced snippets the validator can run, or skip with a reason.

Doctest directives become snippet options (``+SKIP`` -> ``kb:skip``, a CUDA
requirement -> ``kb:requires=cuda``); the imports torch's doctests take for
granted (``torch``, ``nn``, ``F``, ``np``) are written out; an example that uses
names defined elsewhere in the documentation is kept, but marked ``kb:skip``
with the names, so it is read rather than run and reported as broken. An example
that stops for a person (``pdb.set_trace()``, ``input()``) is skipped with that reason.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"^\s*#\s*x?doctest\s*:\s*(.*)$", re.I)
IMPLIED_IMPORTS = {
    "torch": "import torch",
    "nn": "import torch.nn as nn",
    "F": "import torch.nn.functional as F",
    "np": "import numpy as np",
}
_BUILTINS = set(dir(builtins)) | {"__name__", "__file__"}
# Calls that wait for a person at a prompt: run unattended they hang or die (BdbQuit).
INTERACTIVE = {"pdb.set_trace": "starts the pdb debugger", "breakpoint": "starts the debugger",
               "input": "waits for keyboard input", "code.interact": "starts an interactive console",
               "pdb.run": "starts the pdb debugger", "ipdb.set_trace": "starts the ipdb debugger"}


@dataclass
class Snippet:
    info: str  # the fence's info string: python plus kb: options
    code: str


def free_names(code: str) -> set[str]:
    """Names the code reads but never binds (imports, assignments, defs, arguments) and that are not builtins."""
    tree = ast.parse(code)
    bound: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
    return used - bound - _BUILTINS


def interactive_call(code: str) -> str | None:
    """What makes the code wait for a person (a debugger, ``input()``), or None."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else None)
            if name in INTERACTIVE:
                return f"{name}() {INTERACTIVE[name]}"
    return None


def _quote(text: str) -> str:
    return text.replace('"', "'")


def _modules(origin: str) -> list[str]:
    """Module paths that may hold the names an example from ``origin`` uses, innermost first."""
    parts = origin.split(".")
    out = []
    for n in range(len(parts) - 1, 0, -1):
        prefix = parts[:n]
        if prefix[-1][:1].islower() and all(p.isidentifier() for p in prefix):
            out.append(".".join(prefix))
    return out


def make_snippet(code: str, origin: str, resolve: Callable[[str], bool] | None = None) -> Snippet | None:
    """The fenced snippet for an example from ``origin`` (a module path or file); None if it is not valid Python.

    ``resolve(path)`` says whether a documented API exists at a dotted path: a free name the
    example's own module documents (``CheckpointPolicy`` in torch.utils.checkpoint) is imported.
    """
    lines = code.splitlines()
    directives = [m.group(1) for line in lines if (m := _DIRECTIVE.match(line))]
    body = "\n".join(line for line in lines if not _DIRECTIVE.match(line)).strip("\n")
    try:
        free = free_names(body)
    except (SyntaxError, ValueError):
        return None
    if not body.strip():
        return None
    skip: str | None = None
    requires_cuda = False
    for directive in directives:
        upper = directive.upper()
        if "SKIP" in upper:
            reason = re.search(r"SKIP\s*\(\s*['\"]?([^'\")]*)", directive, re.I)
            skip = f"marked skip in the {origin} docs" + (f" ({reason.group(1).strip()})" if reason and reason.group(1).strip() else "")
        if "CUDA" in upper:
            requires_cuda = True
    interactive = interactive_call(body)
    if interactive and skip is None:
        skip = f"interactive: {interactive}, so it is read, not run"
    imports = [stmt for name, stmt in IMPLIED_IMPORTS.items() if name in free]
    free -= set(IMPLIED_IMPORTS)
    if resolve is not None:
        for name in sorted(free):
            module = next((m for m in _modules(origin) if resolve(f"{m}.{name}")), None)
            if module:
                imports.append(f"from {module} import {name}")
                free.discard(name)
    if imports:
        first = body.lstrip().split("\n", 1)[0]
        body = "\n".join(imports) + ("\n" if first.startswith(("import ", "from ")) else "\n\n") + body
    if free and skip is None:
        skip = f"excerpt from {origin}: uses {', '.join(sorted(free)[:5])} defined elsewhere"
    info = "python"
    if requires_cuda:
        info += " kb:requires=cuda"
    if skip:
        info += f' kb:skip="{_quote(skip)}"'
    # One blank line at most, as the writer lays files out: the code validated is the code written here,
    # so its hash (kb.engine.offline.failures) matches what kb validate-snippets recorded.
    body = re.sub(r"\n{3,}", "\n\n", body)
    ast.parse(body)  # the imports we added cannot break it, but the promise is that every fence parses
    return Snippet(info=info, code=body)
