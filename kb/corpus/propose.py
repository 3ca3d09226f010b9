"""Which installed packages a plan needs indexed: ``kb init --plan`` proposes ``[corpus] packages`` from it.

A plan names its libraries as dotted API paths (``asyncio.run``, ``torch.cuda.Stream``,
``concurrent.futures``) and, in its titles, by name ("Python asyncio", "PyTorch"). Those that
are installed here (the standard library included) are proposed; a bare word in the body is
not enough (the standard library has modules called ``time``, ``queue`` and ``profile``).
The proposal is written into kb.toml with a comment saying where it came from.
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
                     "locale shutil tty pty stat symtable tokenize codecs inspect dis graphlib zipapp".split())


def _importable(name: str) -> bool:
    if not name.isidentifier():
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _plan_texts(plan) -> tuple[str, str]:
    """(titles, everything): the plan's and PARTs' titles, and all that the PARTs say."""
    titles = " ".join([plan.title or "", *(p.title for p in plan.parts)])
    body = " ".join([*(q for p in plan.parts for q in p.searches),
                     *(f"{s.title} {s.details or ''}" for p in plan.parts for s in p.sections)])
    return titles, f"{titles} {body}"


def propose_packages(plans) -> list[str]:
    """Installed top-level packages the plans name: dotted roots anywhere, names in titles; in order of first mention."""
    found: dict[str, None] = {}
    for plan in plans:
        titles, text = _plan_texts(plan)
        for root in _DOTTED_ROOT.findall(text):
            name = ALIASES.get(root.lower(), root)
            if name not in found and _importable(name):
                found[name] = None
        for word in _WORD.findall(titles):
            name = ALIASES.get(word.lower(), word if word.islower() else None)
            # A title word is a library only when it is one's exact import name (or alias): "asyncio", "PyTorch".
            if name and name not in found and name not in _ENGLISH and (word.lower() in ALIASES or name in sys.stdlib_module_names
                                               or name in _third_party()) and _importable(name):
                found[name] = None
    return [name for name in found if name != "__main__"]


def _third_party() -> set[str]:
    import importlib.metadata

    return set(importlib.metadata.packages_distributions())


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
