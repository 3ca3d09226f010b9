"""What a snippet needs from the machine: declared (kb:requires=) plus inferred from its code.

Inference reads the code with ``ast`` and never runs it: CUDA use (``.cuda()``, a ``"cuda"``
device, ``torch.cuda`` calls that need a device), ``torch.distributed`` across processes, and
imported modules (checked against the profile's interpreter later).
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field

from kb.snippets.extract import Snippet

# torch.cuda functions that work (and answer honestly) without a device.
_CUDA_SAFE = {"is_available", "device_count", "is_initialized", "get_arch_list", "is_built", "amp", "_is_compiled"}
_CUDA_DEVICE = re.compile(r"^cuda(:\d+)?$")
_GUARDS = ("is_available", "device_count")


@dataclass
class Requirements:
    """Requirements of one snippet; ``why`` explains the inferred ones."""

    cuda: bool = False
    gpus: int = 0  # devices wanted (1 for cuda, N for multi-gpu:N)
    network: bool = False
    distributed: bool = False  # needs a multi-process launch (torchrun) that kb does not provide
    modules: list[str] = field(default_factory=list)
    mentions_cuda: bool = False  # may use CUDA when present (guarded): gets a device in GPU runs
    declared: list[str] = field(default_factory=list)  # kb:requires= as written
    why: list[str] = field(default_factory=list)

    def tokens(self) -> list[str]:
        out = []
        if self.gpus > 1:
            out.append(f"multi-gpu:{self.gpus}")
        elif self.cuda:
            out.append("cuda")
        if self.network:
            out.append("network")
        if self.distributed:
            out.append("distributed")
        out.extend(t for t in self.declared if t.startswith("module:"))
        return out


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _is_guard(test: ast.AST) -> bool:
    """``if torch.cuda.is_available():`` and friends: the branch runs only where CUDA exists."""
    return any(isinstance(n, ast.Call) and _dotted(n.func).endswith(_GUARDS) and "cuda" in _dotted(n.func) for n in ast.walk(test))


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.cuda: list[str] = []
        self.nprocs: list[int] = []
        self.init_group = False
        self.spawn = False
        self.nccl = False
        self.imports: list[str] = []

    # CUDA used only under an availability guard is optional, not required.
    def visit_If(self, node: ast.If) -> None:
        if _is_guard(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        if _is_guard(node.test):
            self.visit(node.orelse)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.imports.extend(alias.name.split(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.imports.append(node.module.split(".")[0])

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str) and _CUDA_DEVICE.match(value.value):
            self.cuda.append(f'a "{value.value}" device')
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "cuda":
            self.cuda.append(".cuda()")
        parts = name.split(".")
        rest = parts[2:] if parts[:2] == ["torch", "cuda"] else parts[1:] if parts[0] == "cuda" else []
        if rest and rest[0] not in _CUDA_SAFE:
            self.cuda.append(f"{name}()")
        args = [*node.args, *(k.value for k in node.keywords)]
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                if _CUDA_DEVICE.match(arg.value):
                    self.cuda.append(f'a "{arg.value}" device')
                if arg.value == "nccl":
                    self.nccl = True
        if name.endswith("init_process_group"):
            self.init_group = True
            self._count(node, ("world_size",))
        if name.endswith(".spawn") or name == "spawn" or name.endswith("start_processes"):
            self.spawn = True
            self._count(node, ("nprocs",))
        self.generic_visit(node)

    def _count(self, node: ast.Call, names: tuple[str, ...]) -> None:
        for kw in node.keywords:
            if kw.arg in names and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
                self.nprocs.append(kw.value.value)


def infer(snippet: Snippet) -> Requirements:
    """Declared plus inferred requirements of a snippet (shell snippets: declared only)."""
    req = Requirements(declared=list(snippet.options.requires))
    for token in snippet.options.requires:
        if token == "cuda":
            req.cuda, req.gpus = True, max(req.gpus, 1)
        elif token.startswith("multi-gpu:"):
            req.cuda, req.gpus = True, max(req.gpus, int(token.split(":", 1)[1]))
        elif token == "network":
            req.network = True
        elif token == "distributed":
            req.distributed = True
        elif token.startswith("module:"):
            req.modules.append(token.split(":", 1)[1])
    if snippet.kind != "python":
        return req
    req.mentions_cuda = "cuda" in snippet.code or "nccl" in snippet.code
    try:
        tree = ast.parse(snippet.code)
    except SyntaxError:
        return req  # it will fail when run, with the SyntaxError as the reason
    finder = _Finder()
    finder.visit(tree)
    if finder.cuda and not req.cuda:
        req.cuda, req.gpus = True, max(req.gpus, 1)
        req.why.append(f"uses CUDA ({finder.cuda[0]})")
    processes = max(finder.nprocs, default=0)
    if finder.init_group and not finder.spawn and not req.distributed:
        # init_process_group with no spawn: written for torchrun, which starts the other ranks.
        req.distributed = True
        req.why.append("torch.distributed.init_process_group without spawning its processes (torchrun)")
    if finder.nccl and processes > 1 and req.gpus < processes:
        req.cuda, req.gpus = True, processes
        req.why.append(f"NCCL across {processes} processes")
    elif finder.nccl and not req.cuda:
        req.cuda, req.gpus = True, max(req.gpus, 1)
        req.why.append("the NCCL backend")
    stdlib = set(sys.stdlib_module_names)
    for name in finder.imports:
        if name not in stdlib and name not in req.modules and name != "__future__":
            req.modules.append(name)
    return req
