"""What a Python fence is, read without running it: Python at all, an excerpt, or whole code.

Answers four questions from the text alone (``ast``, ``symtable``, ``tokenize``):

- is it Python kb can run, or a transcript, output, pseudo-code, another language, elided code;
- is it an excerpt that cannot stand alone (indented, cut off, ``return`` outside a function);
- which names it binds at module level and which global names it uses without binding them;
- does it only define functions and classes (nothing at module level calls anything).

The answers are plain data (``Shape.as_dict``) so a cache can keep them by snippet hash.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import symtable
import tokenize
from dataclasses import dataclass, field

# Names every snippet has without binding them: builtins and what the sandbox's __main__ carries.
KNOWN_NAMES = frozenset(dir(builtins)) | {"__name__", "__file__", "__doc__", "__builtins__", "__spec__", "__loader__", "__package__", "__annotations__"}
# Calls that let code bind names kb cannot see: its free names are then left to the run to judge.
_DYNAMIC_CALLS = {"exec", "eval", "globals", "locals", "vars", "__import__"}
# Module-level calls that only declare something (a type variable, a logger): defining, not doing.
_DECLARING_CALLS = {"TypeVar", "ParamSpec", "TypeVarTuple", "NewType", "namedtuple", "NamedTuple", "TypedDict", "getLogger", "field"}

_PROMPT = re.compile(r"^\s*(>>>|In \[\d*\]:|Out\[\d*\]:)(\s|$)")
_SHELL_WORDS = (
    "pip", "pip3", "python", "python3", "torchrun", "accelerate", "deepspeed", "nvidia-smi", "git", "cd", "ls", "export",
    "conda", "apt", "apt-get", "sudo", "wget", "curl", "docker", "bash", "sh", "make", "cmake", "nvcc", "mkdir", "cat",
    "echo", "srun", "sbatch", "nsys", "ncu", "huggingface-cli", "uv", "poetry", "chmod", "source", "rm", "cp", "mv",
    "tar", "ssh", "scp", "kubectl", "pytest", "jupyter", "tensorboard", "ray", "mpirun", "module",
)
# A command word, then an argument (not an operator: `cat = 3`, `make(x)`, `python_version` are Python).
_SHELL = re.compile(
    r"^\s*(\$\s+\S|#\s*\$\s+\S|(" + "|".join(re.escape(w) for w in _SHELL_WORDS) + r")[ \t]+(?![=+*/%<>!:|&^]|-=|\.\s)[-\w./'\"=:@~$<]"
    r"|[A-Z_][A-Z0-9_]*=\S*\s+(python|torchrun|\S+\.py))"
)
# Commands that parse as Python subtractions (`nvidia-smi` is nvidia - smi) when written alone.
_BARE_COMMAND = re.compile(r"^\s*(nvidia-smi|huggingface-cli|apt-get|nvidia-settings)\s*$")
_MAGIC = re.compile(r"^\s*(%{1,2}[A-Za-z]|![A-Za-z])")
_OUTPUT = re.compile(
    r"^\s*(Output|Out|Result|Results|Expected output|Prints|Epoch|Step|Iter(ation)?|Loss|Accuracy|Traceback \(most recent|"
    r"File \"[^\"]+\", line \d+|[A-Z][A-Za-z]*Error: |[-=+|]{3,}|\d[\d.,]*\s*(ms|s|us|µs|GB|MB|KB|GiB|MiB|%|it/s|samples/s|tokens/s)?\s*$|"
    r"\d[\d.,]*\s*(ms|s|us|µs|GB|MB|KB|GiB|MiB|%|it/s)\b|\|.*\|\s*$)"
)
_C_LIKE = re.compile(r"^\s*(#include\b|__global__|__device__|template\s*<|(static\s+)?(void|int|float|double|auto|const)\s+\**\w+.*[;{)]\s*$|}\s*$|.*;\s*$)")
_PSEUDO = re.compile(r"(\bfor each\b|\bend (for|if|while)\b|\bthen\s*$|←|\bprocedure\b|\brepeat\b.*\buntil\b|^\s*(begin|end)\s*$|^\s*function\s+\w+\s*\()", re.I)
_PLACEHOLDER = re.compile(r"<[A-Za-z_][\w .\-/]*>")
_ELISION = re.compile(r"(…|\.\.\.)")
_T_STRING = re.compile(r"(?<![\w.])(t|tr|rt|T|TR|RT)(['\"])")
_TYPE_ALIAS = re.compile(r"^\s*type\s+[A-Za-z_]\w*\s*(\[[^\]]*\])?\s*=", re.M)
# An f-string reusing its own quote inside a replacement field: f"{", ".join(x)}" (PEP 701).
_NESTED_QUOTES = re.compile(r"""(?<![\w])[fF][rR]?(["'])[^\n]*?\{[^}\n]*\1""")
_TREE = re.compile(r"[├└│─┬┼]")
_YAML = re.compile(r"^\s*(-\s+)?[A-Za-z_][\w.-]*:(\s+\S.*)?$")
_OUTPUT_CALLS = {"tensor", "array", "Parameter", "Size", "device", "dtype"}
_OUTPUT_LABELS = {"Output", "Out", "Result", "Results", "Prints", "Expected", "Returns"}
_GENERIC_DEF = re.compile(r"^\s*(async\s+def|def|class)\s+[A-Za-z_]\w*\s*\[([^\]]*)\]", re.M)


@dataclass
class Shape:
    """What kb read in one Python fence (all fields plain data)."""

    # "not-executable" | "fragment" | None (whole code, as far as kb can tell)
    verdict: str | None = None
    reason: str | None = None
    python: str | None = None  # "3.12": the oldest Python whose syntax this needs (None: any kb supports)
    python_why: str | None = None
    syntax_ok: bool = True  # ast.parse accepted it here
    binds: list[str] = field(default_factory=list)  # names bound at module level (imports, assignments, defs)
    free: list[str] = field(default_factory=list)  # global names used and never bound, not builtins, first use first
    dynamic: bool = False  # star import, exec, globals(): names kb cannot see
    defines: list[str] = field(default_factory=list)  # top-level functions and classes
    defines_only: bool = False  # nothing at module level but imports, definitions and constants
    imports: list[str] = field(default_factory=list)  # top-level modules imported (also read from code that does not parse)
    local_imports: list[str] = field(default_factory=list)  # of those, ones named like the author's own project files

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> Shape:
        """Back from ``as_dict`` (a cached copy: its lists are taken as they are, not copied)."""
        if data.keys() == cls.__dataclass_fields__.keys():
            out = cls.__new__(cls)
            out.__dict__.update(data)
            return out
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# Modules no package index has: names an author gives the files of their own project.
_PROJECT_MODULES = {"model", "models", "utils", "util", "helpers", "helper", "config", "configs", "dataset", "train", "trainer",
                    "src", "app", "main", "common", "my_model", "mymodel", "mymodule", "my_module", "my_project", "myproject",
                    "project", "modules", "layers", "data_utils", "train_utils", "custom_ops", "my_package", "mypackage"}


def is_project_module(name: str) -> bool:
    """A module name that is the author's own file (``from model import Net``), not a package."""
    return name in _PROJECT_MODULES or name.startswith(("my_", "your_"))


def _python_for_error(code: str, error: SyntaxError) -> tuple[str, str] | None:
    """(version, why) when the syntax error is a newer Python's syntax."""
    message = str(error.msg or "")
    if "multiple exception types must be parenthesized" in message:
        return "3.14", "except A, B: without parentheses (PEP 758)"
    if _T_STRING.search(code) and re.search(r"(?<![\w.])[tT][rR]?['\"][^'\"\n]*\{", code):
        return "3.14", "a template string t\"...\" (PEP 750)"
    match = _GENERIC_DEF.search(code)
    if match:
        if "=" in match.group(2):
            return "3.13", "a type parameter with a default (PEP 696)"
        return "3.12", "type parameters def f[T](...) (PEP 695)"
    if _TYPE_ALIAS.search(code):
        return "3.12", "a type statement (PEP 695)"
    bad = code.splitlines()[error.lineno - 1] if error.lineno and 0 < error.lineno <= len(code.splitlines()) else ""
    if "f-string" in message or _NESTED_QUOTES.search(bad):
        return "3.12", "an f-string that only Python 3.12 parses (PEP 701)"
    return None


def _python_for_tree(tree: ast.AST) -> tuple[str, str] | None:
    """Syntax this interpreter parses that an older one would not (kb may run on a newer Python than the profile)."""
    best: tuple[str, str] | None = None
    type_alias = getattr(ast, "TypeAlias", None)
    for node in ast.walk(tree):
        found = None
        if type_alias is not None and isinstance(node, type_alias):
            found = ("3.12", "a type statement (PEP 695)")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and getattr(node, "type_params", None):
            found = ("3.12", "type parameters (PEP 695)")
        elif isinstance(node, getattr(ast, "TryStar", ())):
            found = ("3.11", "except* (PEP 654)")
        elif isinstance(node, ast.Match):
            found = ("3.10", "a match statement (PEP 634)")
        if found and (best is None or _version(found[0]) > _version(best[0])):
            best = found
    return best


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


def tokenized_imports(code: str) -> list[str]:
    """Top-level modules of ``import X`` / ``from X import`` lines, read with tokenize (works on code that does not parse)."""
    found: list[str] = []
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in (tokenize.NL, tokenize.COMMENT)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        tokens = []
        for line in code.splitlines():  # tokenize gave up (an unclosed bracket): read line by line
            try:
                tokens.extend([t for t in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline) if t.type != tokenize.NL])
            except (tokenize.TokenError, IndentationError, SyntaxError):
                continue
    for i, tok in enumerate(tokens):
        starts = i == 0 or tokens[i - 1].type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER) or tokens[i - 1].string == ";"
        if tok.type != tokenize.NAME or tok.string not in ("import", "from") or not starts:
            continue
        j = i + 1
        while j < len(tokens) and tokens[j].type == tokenize.NAME:
            name = tokens[j].string
            if name not in found and name != "__future__":
                found.append(name)
            if tok.string == "from":
                break
            # `import a.b, c as d`: skip to the next comma
            while j < len(tokens) and tokens[j].string not in (",", "\n") and tokens[j].type != tokenize.NEWLINE:
                j += 1
            if j < len(tokens) and tokens[j].string == ",":
                j += 1
            else:
                break
    return found


def _lines(code: str) -> list[str]:
    return [line for line in code.splitlines() if line.strip()]


def _not_python(code: str, error: SyntaxError) -> str | None:
    """Why a fence that does not parse is not Python to run (None: it looks like Python with a bug)."""
    lines = _lines(code)
    real = [line for line in lines if not line.lstrip().startswith("#")]
    if any(_PROMPT.match(line) for line in lines):
        return "a Python session transcript (prompts and output)"
    if real and _SHELL.match(real[0]):
        return "shell commands in a python fence"
    if any(_MAGIC.match(line) for line in real):
        return "IPython magics (% and ! lines) are not Python"
    bad = error.lineno or 0
    error_line = code.splitlines()[bad - 1] if 0 < bad <= len(code.splitlines()) else ""
    if real and sum(bool(_SHELL.match(line)) for line in real) * 2 >= len(real):
        return "shell commands in a python fence"
    elided_line = any(_ELISION.fullmatch(line.strip().strip(",")) for line in real)
    if "…" in code or ("..." in code and (_ELISION.search(error_line) or elided_line)):
        return "elided code (... stands for lines left out)"
    if "#include" in code or sum(bool(_C_LIKE.match(line)) for line in real) * 2 >= len(real) or error_line.lstrip().startswith("__global__"):
        return "not Python (C, C++ or CUDA code)"
    if _PLACEHOLDER.search(error_line):
        return "a placeholder (<...>) to fill in"
    if any(_TREE.search(line) for line in real):
        return "a directory tree"
    if real and all(_YAML.match(line) for line in real):
        return "a YAML config"
    if any(_PSEUDO.search(line) for line in real):
        return "pseudo-code"
    if _OUTPUT.match(error_line) or _prose_like(error_line):
        return "Python mixed with its output" if error.lineno and error.lineno > 1 and _parses("\n".join(code.splitlines()[: bad - 1])) else "output or prose, not code"
    return None


def _prose_like(line: str) -> bool:
    words = line.strip().rstrip(".:").split()
    return len(words) >= 4 and all(re.fullmatch(r"[A-Za-z][A-Za-z'’,-]*", w) for w in words)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return bool(code.strip())


def _excerpt(code: str, error: SyntaxError) -> str | None:
    """Why a fence that does not parse is an excerpt (None: it is not one)."""
    first = next((line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    if isinstance(error, IndentationError) and first[:1] in (" ", "\t") and "unexpected indent" in str(error.msg):
        return "an indented excerpt (cut from inside a block)"
    message = str(error.msg or "")
    lines = code.rstrip().splitlines()
    at_end = (error.lineno or 0) >= len(lines)
    last = lines[-1].strip() if lines else ""
    if last.startswith("@") and at_end:
        return "a decorator with nothing under it (an excerpt)"
    if at_end and ("expected an indented block" in message or "unexpected EOF" in message):
        return "cut off before its end"
    if "was never closed" in message and (last.endswith((",", "(", "[", "{", "=", "+", "-", "*", "/", "\\")) or last in ("...", "…")):
        return "cut off before its end (inside an open bracket)"
    return None


def _output_in_code(tree: ast.Module, free: set[str]) -> bool:
    """Output pasted under code that still parses: ``tensor([0, 1])`` after a print, ``Output: tensor(4.)``."""
    previous: ast.stmt | None = None
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None and isinstance(stmt.target, ast.Name):
            if stmt.target.id in _OUTPUT_LABELS:
                return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            root = func.id if isinstance(func, ast.Name) else _root(func)
            # after a print() or a bare expression, the way a REPL or notebook shows a value
            if name in _OUTPUT_CALLS and root in free and isinstance(previous, ast.Expr):
                return True
        previous = stmt
    return False


def _root(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""





class _Excerpts(ast.NodeVisitor):
    """return/yield/await outside a function, break/continue outside a loop: lines cut from a larger body."""

    def __init__(self) -> None:
        self.function = 0
        self.loop = 0
        self.found: str | None = None

    def _scope(self, node: ast.AST) -> None:
        function, loop = self.function, self.loop
        self.function, self.loop = function + 1, 0
        self.generic_visit(node)
        self.function, self.loop = function, loop

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scope

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        loop = self.loop
        self.loop = 0
        self.generic_visit(node)
        self.loop = loop

    def _loop(self, node: ast.AST) -> None:
        self.loop += 1
        self.generic_visit(node)
        self.loop -= 1

    visit_For = visit_While = visit_AsyncFor = _loop

    def _outside(self, node: ast.AST, what: str) -> None:
        if not self.function and self.found is None:
            self.found = f"an excerpt from inside a function ({what} outside a function)"
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        self._outside(node, "return")

    def visit_Yield(self, node: ast.Yield) -> None:
        self._outside(node, "yield")

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self._outside(node, "yield")

    def visit_Await(self, node: ast.Await) -> None:
        self._outside(node, "await")

    def visit_Break(self, node: ast.Break) -> None:
        if not self.loop and self.found is None:
            self.found = "an excerpt from inside a loop (break outside a loop)"

    def visit_Continue(self, node: ast.Continue) -> None:
        if not self.loop and self.found is None:
            self.found = "an excerpt from inside a loop (continue outside a loop)"


def _names(code: str) -> tuple[list[str], list[str]]:
    """(module-level bound names, global names used but never bound), with symtable."""
    table = symtable.symtable(code, "<snippet>", "exec")
    bound: list[str] = []
    used: list[str] = []
    for sym in table.get_symbols():
        if sym.is_local() or sym.is_imported() or sym.is_assigned():
            bound.append(sym.get_name())
    declared: set[str] = set()
    stack = list(table.get_children())
    scopes = [table]
    while stack:
        scope = stack.pop(0)
        scopes.append(scope)
        stack.extend(scope.get_children())
        for sym in scope.get_symbols():
            if sym.is_declared_global() and sym.is_assigned():
                declared.add(sym.get_name())
    bound_set = set(bound) | declared
    for scope in scopes:
        for sym in scope.get_symbols():
            name = sym.get_name()
            if sym.is_referenced() and sym.is_global() and name not in bound_set and name not in KNOWN_NAMES and name not in used:
                used.append(name)
    return sorted(bound_set), used


def _first_use_order(tree: ast.AST, names: list[str]) -> list[str]:
    wanted = set(names)
    first: dict[str, tuple[int, int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in wanted:
            where = (node.lineno, node.col_offset)
            if node.id not in first or where < first[node.id]:
                first[node.id] = where
    return sorted(names, key=lambda n: first.get(n, (1 << 30, 0)))


def _is_dynamic(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS:
            return True
    return False


def _declaring(value: ast.AST | None) -> bool:
    """A module-level value that only declares: a literal, or a TypeVar/getLogger-style call on literals."""
    if value is None:
        return True
    try:
        ast.literal_eval(value)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        return name in _DECLARING_CALLS
    return isinstance(value, (ast.Name, ast.Attribute))  # an alias: Tensor = torch.Tensor


def _defines_only(tree: ast.Module) -> tuple[bool, list[str]]:
    defines: list[str] = []
    only = True
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defines.append(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
            continue
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring, or `...`
        elif isinstance(stmt, ast.Assign) and _declaring(stmt.value):
            continue
        elif isinstance(stmt, ast.AnnAssign) and _declaring(stmt.value):
            continue
        else:
            only = False
    return only and bool(defines), defines


def read_shape(code: str, tree: ast.Module | None = None) -> Shape:
    """The shape of one Python fence's code (``tree``: its AST when the caller parsed it already)."""
    shape = Shape()
    try:
        tree = tree if tree is not None else ast.parse(code)
    except (SyntaxError, ValueError) as exc:
        error = exc if isinstance(exc, SyntaxError) else SyntaxError(str(exc))
        shape.syntax_ok = False
        shape.imports = tokenized_imports(code)
        shape.local_imports = [m for m in shape.imports if is_project_module(m)]
        newer = _python_for_error(code, error)
        if newer:
            shape.python, shape.python_why = newer
            return shape
        why = _not_python(code, error)
        if why:
            shape.verdict, shape.reason = "not-executable", why
            return shape
        why = _excerpt(code, error)
        if why:
            shape.verdict, shape.reason = "fragment", why
        return shape  # otherwise Python with a syntax error: it runs, and fails with it
    newer = _python_for_tree(tree)
    if newer:
        shape.python, shape.python_why = newer
    shape.imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            shape.imports.extend(a.name.split(".")[0] for a in node.names if a.name.split(".")[0] not in shape.imports)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module.split(".")[0]
            if root not in shape.imports and root != "__future__":
                shape.imports.append(root)
    shape.local_imports = [m for m in shape.imports if is_project_module(m)]
    try:
        shape.binds, free = _names(code)
    except (SyntaxError, ValueError):  # symtable's own checks (nonlocal misuse...): the run will say
        return shape
    shape.free = _first_use_order(tree, free)
    if not tree.body:
        shape.verdict, shape.reason = "not-executable", "only comments" if code.strip() else "empty"
        return shape
    if all(_BARE_COMMAND.match(line) for line in _lines(code) if not line.lstrip().startswith("#")):
        shape.verdict, shape.reason = "not-executable", "shell commands in a python fence"
        return shape
    if _output_in_code(tree, set(free)):
        shape.verdict, shape.reason = "not-executable", "Python mixed with its output"
        return shape
    shape.dynamic = _is_dynamic(tree)
    shape.defines_only, shape.defines = _defines_only(tree)
    excerpts = _Excerpts()
    excerpts.visit(tree)
    if excerpts.found:
        shape.verdict, shape.reason = "fragment", excerpts.found
    return shape


def describe_names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
