"""Docstrings of an installed package as corpus documents, located by module path.

Importing every submodule of a package like torch has side effects (threads,
warnings, optional dependencies), so the walk runs in a child process
(``python -m kb.corpus.docstrings PKG OUT``) that kb kills if it overruns.
The child imports the package, then its public, non-test submodules found on
disk (shallow ones first, within a time budget), and reads the public names
of every module that imported. An object reachable under several names is
indexed once, under its shortest public path (``torch.utils.data.DataLoader``,
not ``torch.utils.data.dataloader.DataLoader``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

from kb.corpus.documents import CorpusDoc, is_test_name
from kb.errors import ConfigError
from kb.lifeline import child_env, die_with_parent_from_env

# Module path components that mark code readers should not be sent to.
# ("benchmark" is not one: torch.utils.benchmark is a documented API; "benchmarks" folders are scripts.)
SKIP_PARTS = {"test", "tests", "testing", "benchmarks", "examples", "conftest", "setup",
              "include", "lib", "share", "bin", "third_party", "vendor", "_vendor", "__main__"}
MIN_DOC_CHARS = 30
MAX_SIGNATURE = 300
# The blocks of a licence header ("Copyright The Microsoft DeepSpeed Team", "Licensed under the Apache License ...").
_LICENSE = re.compile(r"(?:coding[:=]\s*\S+\s+)?(?:copyright\b|mit license\b|spdx-license-identifier\b|licensed under\b"
                      r"|permission is hereby granted\b|the software is provided\b|you may not use this file\b)", re.I)


def package_version(package: str) -> str | None:
    """The installed distribution version of an import name (None when not installed)."""
    dists = [package] + list(importlib.metadata.packages_distributions().get(package, []))
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def source_label(package: str, version: str | None) -> str:
    """How a package's docstrings are named as a source: "torch 2.13.0", "logging (Python 3.11 standard library)"."""
    if version:
        return f"{package} {version}"
    if package.split(".")[0] in sys.stdlib_module_names:  # the standard library has no distribution version
        return f"{package} (Python {sys.version_info.major}.{sys.version_info.minor} standard library)"
    return package


def package_origin(package: str) -> str | None:
    """Where the package would be imported from, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec else None


def _public(name: str) -> bool:
    parts = name.split(".")
    return not any(p.startswith("_") or p.lower() in SKIP_PARTS or is_test_name(p) for p in parts[1:])


def module_names(package: str, root: Path) -> list[str]:
    """Public, non-test module names of a package, from the files on disk, shallow first."""
    names: list[str] = []
    base = root.parent
    # A namespace package's module (google.cloud.storage) sits below its parents' folders: names start from them.
    parents = tuple(package.split(".")[:-1])
    for folder, dirs, files in os.walk(root):
        rel = parents + Path(folder).relative_to(base).parts
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")) and d.lower() not in SKIP_PARTS)
        if "__init__.py" not in files and Path(folder) != root:
            dirs[:] = []  # not a package: nothing below is importable as package.sub
            continue
        for file in sorted(files):
            if not file.endswith(".py") or (file.startswith("_") and file != "__init__.py"):
                continue
            name = ".".join(rel if file == "__init__.py" else (*rel, file[:-3]))
            if _public(name):
                names.append(name)
    return sorted(set(names), key=lambda n: (n.count("."), n))


class _Elided:
    """A default too long to show (a policy object's repr): ``name=...`` keeps the argument's name."""

    def __repr__(self) -> str:
        return "..."


MAX_DEFAULT = 24


def _signature(obj) -> str | None:
    """``(args)`` without annotations, at most MAX_SIGNATURE long: when it runs longer, long defaults become
    ``...`` first, then it is cut between two arguments (``, ...)``), so every name shown is whole."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError, RuntimeError):
        return None
    # Annotations make signatures unreadably long in prose; names and defaults are what readers need.
    params = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]

    def render(kept: list[inspect.Parameter], cut: bool) -> str:
        try:
            sig = str(signature.replace(parameters=kept, return_annotation=inspect.Signature.empty))
        except ValueError:  # e.g. a keyword-only marker left with nothing after it
            return ""
        sig = _without_addresses(sig)
        sig = re.sub(rf"=\b{sys.maxsize}\b", "=sys.maxsize", sig)  # "no limit", as the source writes it
        return sig[:-1] + ", ...)" if cut else sig

    sig = render(params, False)
    if len(sig) <= MAX_SIGNATURE:
        return sig
    params = [p.replace(default=_Elided()) if p.default is not inspect.Parameter.empty
              and len(render([p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)], False)) - len(p.name) - 3
              > MAX_DEFAULT
              else p for p in params]
    sig = render(params, False)
    if len(sig) <= MAX_SIGNATURE:
        return sig
    for count in range(len(params) - 1, 0, -1):
        sig = render(params[:count], True)
        if sig and len(sig) <= MAX_SIGNATURE:
            return sig
    return None


def _without_addresses(text: str) -> str:
    """Default values print as <function f at 0x7f...> or <Options object at 0x7f...>, in signatures and in pybind's
    docstrings alike: the name stays, the address (a new one each time the corpus is built) goes."""
    text = re.sub(r"<(?:function|built-in function|class) ([\w.<>]+)(?: at 0x[0-9a-f]+)?>", r"\1", text)
    text = re.sub(r"<([\w.]+) object at 0x[0-9a-f]+>", r"\1()", text)
    return re.sub(r" at 0x[0-9a-f]+", "", text)


def _docstring(obj) -> str | None:
    """The object's own docstring; for a class without one, its own ``__init__``'s.

    Libraries that document a class in ``__init__`` (Sphinx's ``autoclass_content = "both"``:
    lightning's Trainer, bitsandbytes' 8-bit optimizers) would otherwise lose it. Only a Python
    ``__init__`` defined on the class counts: pybind's are bare signatures.
    """
    doc = getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and not (isinstance(doc, str) and len(doc.strip()) >= MIN_DOC_CHARS):
        try:
            init = vars(obj).get("__init__")
        except TypeError:
            init = None
        if inspect.isfunction(init) and isinstance(init.__doc__, str):
            return _without_addresses(init.__doc__)
    return _without_addresses(doc) if isinstance(doc, str) else None


def _unwrap(obj):
    if isinstance(obj, (classmethod, staticmethod)):
        return obj.__func__
    if isinstance(obj, property):
        return obj.fget
    return obj


class _Walker:
    def __init__(self, package: str, version: str | None, include: tuple[str, ...] = ()):
        self.package = package
        self.version = version
        self.include = include  # private-named paths kb.toml asks for ([corpus].include)
        self.best: dict[int, tuple[tuple, str, object, str]] = {}  # id -> (rank, locator, obj, what)
        self.keep: list[object] = []  # hold references so ids stay unique during the walk
        self.names: dict[int, set[str]] = {}  # every public path an object was found under

    def owned(self, obj) -> bool:
        mod = getattr(obj, "__module__", None)
        if not isinstance(mod, str):
            return True  # C functions often carry no module; they were found in this package
        # "_asyncio" is asyncio's C accelerator: asyncio.Task and asyncio.Future live there.
        return mod == self.package or mod.startswith(self.package + ".") or mod == f"_{self.package}"

    def allowed(self, locator: str) -> bool:
        """Public, or inside a path kb.toml includes (and public below it)."""
        if _public(locator):
            return True
        for path in self.include:
            if locator == path or locator.startswith(path + "."):
                return _public(f"{self.package}.{locator[len(path) + 1:]}") if locator != path else True
        return False

    def offer(self, obj, locator: str, what: str) -> None:
        if not self.allowed(locator):
            return
        doc = _docstring(_unwrap(obj))
        if doc is None or len(doc.strip()) < MIN_DOC_CHARS:
            return
        # A public path wins over an included private one for the same object (torch.compiler.X, not torch._dynamo.X).
        rank = (not _public(locator), locator.count("."), len(locator), locator)
        key = id(_unwrap(obj))
        self.names.setdefault(key, set()).add(locator)
        current = self.best.get(key)
        if current is None or rank < current[0]:
            self.best[key] = (rank, locator, obj, what)
            self.keep.append(obj)

    def walk_module(self, module) -> None:
        name = module.__name__
        self.offer(module, name, "module")
        exported = getattr(module, "__all__", None)
        if not isinstance(exported, (list, tuple)):
            exported = [n for n in vars(module) if not n.startswith("_")]
        for attr in exported:
            if not isinstance(attr, str) or attr.startswith("_"):
                continue
            try:
                obj = getattr(module, attr)
            except Exception:
                continue
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)) or not self.owned(obj):
                continue
            locator = f"{name}.{attr}"
            if inspect.isclass(obj):
                self.offer(obj, locator, "class")
                self.walk_class(obj, locator)
            elif inspect.isroutine(obj) or callable(obj):
                self.offer(obj, locator, "function")

    def walk_class(self, cls, locator: str) -> None:
        # A public class's methods may live on a private base (torch.Tensor's on torch._C.TensorBase):
        # they are documented under the public name.
        hidden = [b for b in getattr(cls, "__mro__", ())[1:] if self.owned(b) and (
            b.__name__.startswith("_") or not _public(f"{getattr(b, '__module__', '')}.x"))]
        members: list[tuple[str, object]] = []
        for owner in (cls, *hidden):
            try:
                members.extend(vars(owner).items())
            except TypeError:
                continue
        for attr, member in members:
            if attr.startswith("_"):
                continue
            target = _unwrap(member)
            if target is None or not (inspect.isroutine(target) or isinstance(member, property)):
                continue
            self.offer(member, f"{locator}.{attr}", "property" if isinstance(member, property) else "method")

    def source(self) -> str:
        return source_label(self.package, self.version)

    def documents(self) -> list[dict]:
        from kb.corpus.rst import parse_docstring

        out = []
        source = self.source()
        for _rank, locator, obj, what in sorted(self.best.values(), key=lambda v: v[1]):
            target = _unwrap(obj)
            try:
                parsed = parse_docstring(_docstring(target))
            except Exception:  # one odd docstring must not lose the package
                continue
            while parsed.blocks and _LICENSE.match(parsed.blocks[0]):
                parsed.blocks.pop(0)  # a source file's licence header read as a module docstring documents nothing
            prose = [b for b in parsed.blocks if not (b.startswith("`") and b.endswith("`") and b.count("`") == 2)]
            if not prose and not parsed.examples:
                continue  # a bare signature (pybind) says nothing the name does not
            blocks = list(parsed.blocks)
            if what in ("function", "method", "class") and not (blocks and blocks[0].startswith("`")):
                sig = _signature(target)
                if sig is not None:
                    blocks.insert(0, f"`{locator.rsplit('.', 1)[-1]}{sig}`")
            deprecated = (parsed.deprecated or bool(getattr(target, "__deprecated__", None))
                          or any("legacy" in part for part in locator.split(".")))
            aliases = sorted(self.names.get(id(target), set()) - {locator},
                             key=lambda n: (not _public(n), n.count("."), len(n), n))
            title = locator
            if aliases and what in ("class", "function"):
                title = f"{locator} (also {aliases[0]})"
            words = " ".join([locator, *aliases[:3]])
            doc = CorpusDoc(kind="doc", locator=locator, title=title, text="\n\n".join(blocks),
                            examples=parsed.examples, deprecated=deprecated, source=source, keywords=words)
            out.append(doc.to_json())
        return out


def _resolve(path: str):
    """The module or object a dotted path names (importing its longest module prefix), or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except BaseException:  # noqa: BLE001 - not a module (or a broken one): try a shorter prefix
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _walk_included(walker: _Walker, path: str) -> list[dict]:
    """Offer one ``[corpus].include`` path to the walker; a config module's commented options as extra documents."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        obj = _resolve(path)
    if obj is None:
        return []
    if inspect.ismodule(obj):
        walker.walk_module(obj)
        from kb.corpus.options import option_docs  # noqa: PLC0415 - only included modules need it

        return option_docs(obj, path, walker.source())
    what = "class" if inspect.isclass(obj) else "function"
    walker.offer(obj, path, what)
    if inspect.isclass(obj):
        walker.walk_class(obj, path)
    return []


def extract(package: str, budget_s: float = 60.0, include: tuple[str, ...] = ()) -> list[dict]:
    """Walk ``package`` in this process (and the private ``include`` paths); the documents as JSON-ready dicts."""
    warnings.simplefilter("ignore")
    started = time.monotonic()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        root_module = importlib.import_module(package)
    walker = _Walker(package, package_version(package), tuple(include))
    names = [package]
    paths = list(getattr(root_module, "__path__", []) or [])
    if paths:
        names = module_names(package, Path(paths[0]))
    for name in names:
        if time.monotonic() - started > budget_s:
            break  # what is imported so far is indexed; the rest is skipped
        if name in sys.modules:
            continue
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - optional deps, sys.exit in scripts: skip the module
            continue
        sink.seek(0)
        sink.truncate()
    modules = sorted(
        (m for n, m in list(sys.modules.items()) if (n == package or n.startswith(package + ".")) and _public(n) and m),
        key=lambda m: (m.__name__.count("."), m.__name__),
    )
    for module in modules:
        try:
            walker.walk_module(module)
        except Exception:
            continue
    extra: list[dict] = []
    for path in include:
        try:
            extra += _walk_included(walker, path)
        except Exception:  # an include that breaks on import is skipped, like any module
            continue
    return walker.documents() + extra


def extract_in_subprocess(package: str, out_path: Path, budget_s: float = 60.0,
                          include: list[str] | tuple[str, ...] = ()) -> list[CorpusDoc]:
    """Run :func:`extract` in a child Python (the same interpreter) and read its documents."""
    if package_origin(package) is None:
        raise ConfigError(f"[corpus].packages: {package!r} is not installed in {sys.executable}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    env = child_env(dict(os.environ, PYTHONWARNINGS="ignore", CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", "")))
    cmd = [sys.executable, "-m", "kb.corpus.docstrings", package, str(out_path), str(budget_s), json.dumps(list(include))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget_s + 120, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"[corpus].packages: reading the docstrings of {package!r} took too long") from None
    if proc.returncode != 0 or not out_path.exists():
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"[corpus].packages: could not read the docstrings of {package!r}: {tail[0]}")
    with open(out_path, encoding="utf-8") as handle:
        return [CorpusDoc.from_json(json.loads(line)) for line in handle if line.strip()]


def main(argv: list[str]) -> int:
    package, out, budget = argv[0], Path(argv[1]), float(argv[2]) if len(argv) > 2 else 60.0
    include = tuple(json.loads(argv[3])) if len(argv) > 3 else ()
    docs = extract(package, budget, include)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    die_with_parent_from_env()  # a killed kb run-plan leaves no extractor behind
    # Imports of arbitrary submodules may leave non-daemon threads behind: exit hard once written.
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
