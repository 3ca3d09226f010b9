"""Documentation examples as fenced snippets the validator can run, or skip with a reason.

Each example has two forms. The *runnable* one is what kb would like to show: the imports
torch's doctests take for granted (``torch``, ``nn``, ``F``, ``np``, standard-library modules) written out, a visible
setup for names defined elsewhere when an honest stand-in exists (kb.engine.offline.setup),
and the documentation's own ``+SKIP`` dropped (torch marks examples skipped for its doctest
runner, mostly because of those names). The *conservative* one is the example as the docs
give it: a ``+SKIP`` becomes ``kb:skip``, an example using names defined elsewhere is marked
``kb:skip`` with the names. The writer shows the runnable form only when kb's sandbox ran it
(kb.engine.offline.gate); otherwise the conservative one, which validation skips, never fails.
Either way a CUDA requirement becomes ``kb:requires=cuda``, and an example that stops for a
person (``pdb.set_trace()``, ``input()``) is skipped with that reason.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from kb.engine.offline.setup import SETUP_IMPORTS, setup_code, setup_for
from kb.snippets.shape import read_shape

_DIRECTIVE = re.compile(r"^\s*#\s*x?doctest\s*:\s*(.*)$", re.I)
IMPLIED_IMPORTS = {
    "torch": "import torch",
    "nn": "import torch.nn as nn",
    "F": "import torch.nn.functional as F",
    "np": "import numpy as np",
    "dist": "import torch.distributed as dist",  # the torch docs' own alias: not torch.dist, the p-norm
}
# Calls that wait for a person at a prompt: run unattended they hang or die (BdbQuit).
INTERACTIVE = {"pdb.set_trace": "starts the pdb debugger", "breakpoint": "starts the debugger",
               "input": "waits for keyboard input", "code.interact": "starts an interactive console",
               "pdb.run": "starts the pdb debugger", "ipdb.set_trace": "starts the ipdb debugger"}
# Builtins a docstring uses as data (``model(input)``): read as a name defined elsewhere, not as the builtin.
_BUILTINS_AS_DATA = ("input",)


@dataclass
class Snippet:
    info: str  # the fence's info string: python plus kb: options
    code: str
    setup: list[str] = field(default_factory=list)  # names kb's visible setup binds (empty: the docs' code as given)
    doc_skip: bool = False  # the runnable form dropped the docs' own +SKIP


def strip_directives(code: str) -> str:
    """The example without its doctest directive lines (what any form of it shows)."""
    return "\n".join(line for line in code.splitlines() if not _DIRECTIVE.match(line)).strip("\n")


def free_names(code: str) -> set[str]:
    """Names the code reads but never binds and that are not builtins (kb.snippets.shape's reading of it)."""
    tree = ast.parse(code)
    shape = read_shape(code, tree)
    return set(shape.free) | _data_builtins(tree, shape.binds)


def _data_builtins(tree: ast.AST, binds: list[str]) -> set[str]:
    """``input`` read as a value and never called or bound: the docs' data, not the builtin."""
    out = set()
    for name in _BUILTINS_AS_DATA:
        if name in binds:
            continue
        loads = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
        called = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(tree))
        bound_inside = any(isinstance(n, ast.Name) and n.id == name and not isinstance(n.ctx, ast.Load) for n in ast.walk(tree)) \
            or any(isinstance(n, ast.arg) and n.arg == name for n in ast.walk(tree))
        if loads and not called and not bound_inside:
            out.add(name)
    return out


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


@dataclass
class _Reading:
    """What kb reads in one example before writing either form."""

    body: str
    free: list[str]
    binds: list[str]
    imports: list[str]
    doc_skip: str | None
    requires_cuda: bool
    interactive: str | None
    shape_verdict: str | None


def _read(code: str, origin: str, resolve: Callable[[str], bool] | None) -> _Reading | None:
    lines = code.splitlines()
    directives = [m.group(1) for line in lines if (m := _DIRECTIVE.match(line))]
    body = "\n".join(line for line in lines if not _DIRECTIVE.match(line)).strip("\n")
    if not body.strip():
        return None
    try:
        tree = ast.parse(body)
    except (SyntaxError, ValueError):
        return None
    shape = read_shape(body, tree)
    free = list(shape.free) + sorted(_data_builtins(tree, shape.binds) - set(shape.free))
    first = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in free:
            first[node.id] = min(first.get(node.id, (node.lineno, node.col_offset)), (node.lineno, node.col_offset))
    free.sort(key=lambda name: first.get(name, (1 << 30, 0)))  # in the order a reader meets them
    doc_skip: str | None = None
    requires_cuda = False
    for directive in directives:
        upper = directive.upper()
        if "SKIP" in upper:
            reason = re.search(r"SKIP\s*\(\s*['\"]?([^'\")]*)", directive, re.I)
            doc_skip = f"marked skip in the {origin} docs" + (f" ({reason.group(1).strip()})" if reason and reason.group(1).strip() else "")
        if "CUDA" in upper:
            requires_cuda = True
    imports = [stmt for name, stmt in IMPLIED_IMPORTS.items() if name in free]
    # A standard-library module the example uses without importing it (math, functools): the docs assume the import.
    imports += [f"import {name}" for name in free if name in sys.stdlib_module_names and name not in IMPLIED_IMPORTS]
    free = [n for n in free if n not in IMPLIED_IMPORTS and n not in sys.stdlib_module_names]
    # A lowercase name the example reads attributes of (``dist.GradBucket``) is a module alias it assumes, not the
    # function of that name an outer module documents (torch.dist): it stays a name defined elsewhere.
    aliases = {node.value.id for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Name) and node.value.id[:1].islower()}
    if resolve is not None:
        for name in sorted(free):
            if name in aliases:
                continue
            module = next((m for m in _modules(origin) if resolve(f"{m}.{name}")), None)
            if module:
                imports.append(f"from {module} import {name}")
                free.remove(name)
    return _Reading(body=body, free=free, binds=list(shape.binds), imports=imports, doc_skip=doc_skip,
                    requires_cuda=requires_cuda, interactive=interactive_call(body), shape_verdict=shape.verdict)


IMPORTS_NOTE = "# Imports added by kb (not in the docs):"


def _join(imports: list[str], *blocks: str) -> str:
    """The imports kb added under their note, then the blocks, a blank line between: the note covers kb's lines
    only, never the docs' own imports that open the example."""
    head = "\n".join([IMPORTS_NOTE, *dict.fromkeys(imports)]) if imports else ""
    parts = [p for p in (head, *blocks) if p]
    # One blank line at most, as the writer lays files out: the code validated is the code written.
    return re.sub(r"\n{3,}", "\n\n", "\n\n".join(parts))


def make_snippet(code: str, origin: str, resolve: Callable[[str], bool] | None = None) -> Snippet | None:
    """The conservative snippet for an example from ``origin`` (a module path or file); None if it is not valid Python.

    ``resolve(path)`` says whether a documented API exists at a dotted path: a free name the
    example's own module documents (``CheckpointPolicy`` in torch.utils.checkpoint) is imported.
    """
    reading = _read(code, origin, resolve)
    if reading is None:
        return None
    skip = reading.doc_skip
    if reading.interactive and skip is None:
        skip = f"interactive: {reading.interactive}, so it is read, not run"
    if reading.free and skip is None:
        skip = f"excerpt from {origin}: uses {', '.join(sorted(reading.free)[:5])} defined elsewhere"
    info = "python" + (" kb:requires=cuda" if reading.requires_cuda else "")
    if skip:
        info += f' kb:skip="{_quote(skip)}"'
    text = _join(reading.imports, reading.body)
    ast.parse(text)  # the imports we added cannot break it, but the promise is that every fence parses
    return Snippet(info=info, code=text)


def runnable_snippet(code: str, origin: str, resolve: Callable[[str], bool] | None = None,
                     device: str | None = None) -> Snippet | None:
    """The form kb would run: docs' +SKIP dropped, a visible setup for names defined elsewhere; None when there is none.

    None for an example that waits for a person, that kb's reading calls a fragment or not
    executable, or that uses a name no honest stand-in covers. ``device``: the setup's model and
    tensors are made there (kb.engine.offline.setup).
    """
    reading = _read(code, origin, resolve)
    if reading is None or reading.interactive or reading.shape_verdict is not None:
        return None
    names: list[str] = []
    if reading.free:
        names = setup_for(reading.free, reading.binds) or []
        if not names:
            return None
    info = "python" + (" kb:requires=cuda" if reading.requires_cuda else "")
    if names:
        imports = list(SETUP_IMPORTS) + [i for i in reading.imports if i not in SETUP_IMPORTS]
        text = _join(imports, setup_code(names, origin, reading.body, device), f"# The example, from the {origin} docs:\n{reading.body}")
    else:
        text = _join(reading.imports, reading.body)
    ast.parse(text)
    return Snippet(info=info, code=text, setup=names, doc_skip=reading.doc_skip is not None)
