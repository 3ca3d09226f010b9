"""Which installed packages a plan needs indexed: ``kb init --plan`` proposes ``[corpus] packages`` from it.

A plan names its libraries as dotted API paths (``asyncio.run``, ``torch.cuda.Stream``,
``concurrent.futures``) and by name, in its titles, its sections' titles and details and its
queries ("Python asyncio", "TensorBoard Profiler", "8-bit optimizers (bitsandbytes)", "PyTorch").
Those that are installed here (the standard library included) are proposed. A name is a word
that is exactly a library's import or distribution name (a third-party one in any case:
"DeepSpeed", "TensorBoard"; a standard-library one in lower case, as in "async logging"), never
an everyday word the standard library or a package happens to use as a name (``time``,
``queue``, ``profile``, ``rich``). The proposal is written into kb.toml with a comment.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from kb.fsutil import atomic_write_text

# What plans call a library when they do not write its import name.
ALIASES = {"pytorch": "torch", "prometheus": "prometheus_client", "nvml": "pynvml", "sklearn": "sklearn",
           "scikit-learn": "sklearn", "numpy": "numpy", "pandas": "pandas"}
_DOTTED_ROOT = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\.[A-Za-z_]")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_PACKAGES_LINE = re.compile(r"(?m)^packages\s*=.*$")
# Standard-library modules named like everyday words: in a title they are words, not libraries.
_ENGLISH = frozenset("time random queue select profile trace code types string copy signal array secrets site token "
                     "this test io abc glob numbers operator keyword email html wave turtle struct calendar platform "
                     "locale shutil tty pty stat symtable tokenize codecs inspect dis graphlib zipapp "
                     # third-party import or distribution names that are everyday words too
                     "rich click six attrs outcome packaging requests regex future mock black isort sure "
                     "tables plot pipe arrow pendulum tqdm toolz".split())


def _importable(name: str) -> bool:
    if not name.isidentifier():
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _plan_texts(plan) -> str:
    """Everything a plan says of its subject: its and its PARTs' titles, sections (title, details) and queries."""
    return " ".join([plan.title or "", *(p.title for p in plan.parts), *(q for p in plan.parts for q in p.searches),
                     *(f"{s.title} {s.details or ''}" for p in plan.parts for s in p.sections)])


def propose_packages(plans) -> list[str]:
    """Installed top-level packages the plans name: dotted roots, then library names; in order of first mention."""
    found: dict[str, None] = {}
    third_party = _third_party()
    for plan in plans:
        text = _plan_texts(plan)
        for root in _DOTTED_ROOT.findall(text):
            name = ALIASES.get(root.lower(), root)
            if name not in found and _importable(name):
                found[name] = None
        for word in _WORD.findall(text):
            name = _library_name(word, third_party)
            if name and name not in found and _importable(name):
                found[name] = None
    return [name for name in found if name != "__main__"]


def _library_name(word: str, third_party: dict[str, str]) -> str | None:
    """The import name a plan's word stands for, or None when it is an everyday word or no library's name."""
    lower = word.lower()
    if lower in ALIASES:
        return ALIASES[lower]
    if lower in _ENGLISH:
        return None
    if word.islower() and word in sys.stdlib_module_names:
        return word
    return third_party.get(lower.replace("_", "-"))


def _third_party() -> dict[str, str]:
    """Installed import names and distribution names (lower case, ``-`` for ``_``) -> the import name."""
    import importlib.metadata

    names: dict[str, str] = {}
    by_dist: dict[str, list[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        if module.isidentifier() and not module.startswith("_"):
            names[module.lower().replace("_", "-")] = module
            if len(set(dists)) == 1:  # not a namespace many distributions share (google: protobuf, google-auth, ...)
                by_dist.setdefault(dists[0].lower().replace("_", "-"), []).append(module)
    for dist, modules in by_dist.items():
        # A distribution that ships several packages (torch: torch, functorch, torchgen) names the one called like it.
        if dist not in names and len(modules) == 1:
            names[dist] = modules[0]
    return names


def write_packages(kb_toml: Path, packages: list[str], sources: list[str]) -> bool:
    """Set ``[corpus] packages`` in kb.toml to ``packages``, with a comment naming the plans; False if no such line."""
    text = kb_toml.read_text(encoding="utf-8")
    if not _PACKAGES_LINE.search(text):
        return False
    where = ", ".join(sources)
    why = (f"proposed by kb init from {where}: the installed libraries it names" if packages
           else f"kb init found no installed library named in {where}: add the ones to index")
    listed = ", ".join(f'"{p}"' for p in packages)
    line = (f"packages = [{listed}]  # {why}; docstrings of these are the corpus "
            "(add packages here, Markdown folders to `folders`)")
    atomic_write_text(kb_toml, _PACKAGES_LINE.sub(lambda _m: line, text, count=1))
    return True


def propose_corpus(workspace, plan_paths: list[Path]) -> list[str] | None:
    """Parse the plans copied into a new workspace and write the packages they name into its kb.toml.

    Returns the packages written (None when kb.toml has no ``packages`` line to set).
    """
    from kb.plan import load_plan

    plans = [load_plan(path) for path in plan_paths]
    packages = propose_packages(plans)
    written = write_packages(workspace.root / "kb.toml", packages, [workspace.rel(p) for p in plan_paths])
    return packages if written else None
