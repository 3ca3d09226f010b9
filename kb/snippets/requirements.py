"""What a snippet needs from the machine: declared (kb:requires=) plus inferred from its code.

Inference reads the code with ``ast`` and never runs it: CUDA use (``.cuda()``, a ``"cuda"``
device, also built in an f-string or held in a variable, ``torch.cuda`` calls that need a device,
a CUDA extension build), ``torch.distributed`` across processes, imported modules (checked against
the profile's interpreter later, and read with ``tokenize`` when the code does not parse) and the
Python version its syntax needs.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field

from kb.snippets.extract import Snippet
from kb.snippets.shape import Shape, read_shape

# torch.cuda functions that work (and answer honestly) without a device: checked on a CPU build
# of torch (they return 0, None or do nothing), so a snippet calling them runs on any machine.
_CUDA_SAFE = {
    "is_available", "device_count", "is_initialized", "get_arch_list", "is_built", "amp", "_is_compiled",
    "manual_seed", "manual_seed_all", "seed", "seed_all", "empty_cache", "memory_allocated", "memory_reserved",
    "max_memory_allocated", "max_memory_reserved", "memory_cached", "max_memory_cached", "memory_stats",
    "get_rng_state_all", "set_rng_state_all", "is_bf16_supported", "stream",
}
_CUDA_DEVICE = re.compile(r"^cuda(:\d+)?$")
_CUDA_PREFIX = re.compile(r"^cuda(:|$)")
# Calls that take "cuda" as a device type but run (disabled, with a warning) where CUDA is absent.
_CUDA_TOLERANT = ("autocast", "GradScaler")
# torch.utils.cpp_extension names that compile CUDA code (nvcc and a device to run it on).
_CUDA_BUILD = {"CUDAExtension", "CUDA_HOME"}
_GUARDS = ("is_available", "device_count")


@dataclass
class Requirements:
    """Requirements of one snippet; ``why`` explains the inferred ones."""

    cuda: bool = False
    gpus: int = 0  # devices wanted (1 for cuda, N for multi-gpu:N)
    network: bool = False
    distributed: bool = False  # needs a multi-process launch (torchrun) that kb does not provide
    modules: list[str] = field(default_factory=list)
    python: str | None = None  # "3.12": the oldest Python whose syntax or standard library it needs
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
        if self.python:
            out.append(f"python>={self.python}")
        return out

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, list) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> Requirements:
        """Back from ``as_dict`` (a cached copy: its lists are taken as they are, not copied)."""
        if data.keys() == cls.__dataclass_fields__.keys():
            out = cls.__new__(cls)
            out.__dict__.update(data)
            return out
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _cuda_string(node: ast.AST) -> str | None:
    """'a "cuda:0" device' when ``node`` is a string naming a CUDA device: a constant, an f-string
    (``f"cuda:{rank}"``), a concatenation (``"cuda:" + str(i)``) or a format call (``"cuda:{}".format(i)``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return f'a "{node.value}" device' if _CUDA_DEVICE.match(node.value) else None
    if isinstance(node, ast.IfExp) and not _is_guard(node.test):
        return _cuda_string(node.body) or _cuda_string(node.orelse)  # "cuda" if use_gpu else "cpu": chosen by a flag
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and _CUDA_PREFIX.match(head.value):
            return f'a "{head.value}..." device (an f-string)'
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        left = node.left
        if isinstance(left, ast.Constant) and isinstance(left.value, str) and _CUDA_PREFIX.match(left.value):
            return f'a "{left.value}..." device'
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        base = node.func.value
        if isinstance(base, ast.Constant) and isinstance(base.value, str) and _CUDA_PREFIX.match(base.value):
            return f'a "{base.value}" device'
    return None


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
        self.from_imports: list[tuple[str, str]] = []

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
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.imports.append(node.module.split(".")[0])
            self.from_imports.extend((node.module, alias.name) for alias in node.names)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._device_value(node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._device_value(node.value)
        self.generic_visit(node)

    def _device_value(self, value: ast.AST) -> None:
        """``dev = "cuda"``, ``dev = f"cuda:{rank}"``, ``dev = "cuda" if use_gpu else "cpu"``: a variable holding a CUDA device."""
        if isinstance(value, ast.IfExp) and not _is_guard(value.test):
            self._device_value(value.body)
            self._device_value(value.orelse)
            return
        found = _cuda_string(value)
        if found:
            self.cuda.append(found)

    def visit_alias(self, node: ast.alias) -> None:
        if node.name in _CUDA_BUILD:
            self.cuda.append(f"builds a CUDA extension ({node.name})")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _CUDA_BUILD and _dotted(node).startswith(("torch.utils.cpp_extension", "cpp_extension")):
            self.cuda.append(f"builds a CUDA extension ({node.attr})")
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
        tolerant = name.split(".")[-1] in _CUDA_TOLERANT
        for arg in args:
            found = None if tolerant else _cuda_string(arg)
            if found:
                self.cuda.append(found)
            if isinstance(arg, ast.Constant) and arg.value == "nccl":
                self.nccl = True
        if name.split(".")[-1] in ("load", "load_inline"):
            if any(k.arg == "cuda_sources" for k in node.keywords) or any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.endswith(".cu") for n in args for a in ast.walk(n)
            ):
                self.cuda.append("compiles CUDA sources (torch.utils.cpp_extension)")
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


def infer(snippet: Snippet, tree: ast.AST | None = None, shape: Shape | None = None) -> Requirements:
    """Declared plus inferred requirements of a snippet (shell snippets: declared only).

    ``tree`` and ``shape``: the snippet's parsed code and shape when the caller has them already.
    """
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
    if shape is None:
        shape = read_shape(snippet.code)
    if shape.python:
        req.python = shape.python
        req.why.append(f"Python >= {shape.python} syntax: {shape.python_why}")
    stdlib = set(sys.stdlib_module_names)
    if tree is None and shape.syntax_ok:
        try:
            tree = ast.parse(snippet.code)
        except (SyntaxError, ValueError):
            tree = None
    if tree is None:
        # Code that does not parse here still says what it imports.
        for name in shape.imports:
            if name not in stdlib and name not in req.modules:
                req.modules.append(name)
        return req
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
    for name in finder.imports:
        if name not in stdlib and name not in req.modules and name != "__future__":
            req.modules.append(name)
    newer = stdlib_python(finder.imports, finder.from_imports)
    if newer and (req.python is None or _version(newer[0]) > _version(req.python)):
        req.python = newer[0]
        req.why.append(f"Python >= {newer[0]} standard library: {newer[1]}")
    return req


# Standard-library additions a snippet may import: (module, name or None) -> the Python that added it.
STDLIB_ADDED = {
    ("tomllib", None): "3.11", ("typing", "Self"): "3.11", ("enum", "StrEnum"): "3.11", ("datetime", "UTC"): "3.11",
    ("typing", "LiteralString"): "3.11", ("typing", "Never"): "3.11", ("typing", "assert_never"): "3.11",
    ("itertools", "batched"): "3.12", ("typing", "override"): "3.12", ("typing", "TypeAliasType"): "3.12",
    ("warnings", "deprecated"): "3.13", ("copy", "replace"): "3.13", ("typing", "TypeIs"): "3.13", ("typing", "ReadOnly"): "3.13",
    ("annotationlib", None): "3.14", ("string.templatelib", None): "3.14", ("compression", None): "3.14",
}


def stdlib_python(imports: list[str], from_imports: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(version, what) for the newest standard-library addition imported, None when there is none."""
    best: tuple[str, str] | None = None
    candidates = [((m, None), m) for m in imports] + [((m, n), f"{n} from {m}") for m, n in from_imports] + [((m, None), m) for m, _ in from_imports]
    for key, what in candidates:
        version = STDLIB_ADDED.get(key)
        if version and (best is None or _version(version) > _version(best[0])):
            best = (version, what)
    return best


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])
