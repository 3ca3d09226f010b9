"""Decide, per snippet, what happens: not executable, a fragment, skipped (and why), or run; group
kb:continue chains and put each file's kb:setup fences in front of its other snippets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.snippets.analysis import Analysis, analyze
from kb.snippets.environment import Environment
from kb.snippets.extract import Snippet
from kb.snippets.profiles import Profile
from kb.snippets.requirements import Requirements
from kb.snippets.shape import Shape, describe_names


_NO_REQUIREMENTS = Requirements()
_NO_SHAPE = Shape()


@dataclass
class Entry:
    """One snippet and everything this run learns about it."""

    snippet: Snippet
    file: str  # workspace-relative Markdown path
    id: str
    # Shared empty defaults (never changed: plan() replaces them for code it reads).
    requirements: Requirements = field(default_factory=lambda: _NO_REQUIREMENTS)
    shape: Shape = field(default_factory=lambda: _NO_SHAPE)
    status: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    cached: bool = False
    key: str = ""  # cache key (chain-aware)
    continues: int | None = None  # line of the snippet whose process it shares
    setup: bool = False  # a kb:setup fence: runs before the file's other snippets
    known_names: frozenset[str] = frozenset()  # names bound when it has run: kb:setup, the chain before it, its own
    names_unsure: bool = False  # a star import or exec() somewhere before: names kb cannot see
    only_defines: bool = False  # it defines functions or classes that nothing after it in its process uses
    fact: dict | None = None  # what the sandbox reported when it ran (outputs aside): judged again on a cached rerun

    @property
    def timeout(self) -> float | None:
        return self.snippet.options.timeout


@dataclass
class Chain:
    """Snippets that run in one process, in order (a snippet plus its kb:continue followers)."""

    entries: list[Entry]
    run: list[Entry] = field(default_factory=list)  # the prefix that runs, fixed once planned
    setup: list[Entry] = field(default_factory=list)  # the file's kb:setup fences, run first in the same process


def _python(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version or "")[:2])


def unmet(req: Requirements, env: Environment, profile: Profile) -> list[str]:
    """Why this machine cannot run a snippet with ``req`` (empty: it can)."""
    reasons = []
    if req.python and env.python and _python(env.python) < _python(req.python):
        reasons.append(f"requires Python >= {req.python} (this machine has {env.python})")
    if req.gpus > 1:
        if "multi-gpu" not in profile.satisfies or not env.cuda_usable or env.gpu_count < req.gpus:
            reasons.append(f"requires {req.gpus} GPUs" + (f" (this machine has {env.gpu_count})" if env.gpu_count else ""))
    elif req.cuda:
        if not env.cuda_usable:
            reasons.append("requires cuda")
        elif "cuda" not in profile.satisfies:
            reasons.append(f"requires cuda (the {profile.name} profile runs none; use --gpu)")
    if req.network and "network" not in profile.satisfies:
        reasons.append(f"requires network (the {profile.name} profile allows none)")
    if req.distributed and "distributed" not in profile.satisfies:
        reasons.append("requires torch.distributed across processes (a torchrun launch)")
    for name in req.modules:
        if not env.modules.get(name, True):
            reasons.append(f"requires module {name} (not installed)")
    return reasons


def knowledge_id(file: str, line: int) -> str:
    rel = file[len("knowledge/"):] if file.startswith("knowledge/") else file
    return f"{rel}#L{line}"


def plan(files: dict[str, list[Snippet]], env: Environment, profile: Profile,
         analyses: dict[str, Analysis] | None = None) -> tuple[list[Entry], list[Chain]]:
    """Classify every snippet; return all entries and the chains that have something to run.

    ``analyses``: shape and requirements already read, by snippet hash.
    """
    entries: list[Entry] = []
    chains: list[Chain] = []
    for file, snippets in files.items():
        current: Chain | None = None
        mine: list[Chain] = []
        setups: list[Entry] = []
        for snippet in snippets:
            entry = Entry(snippet=snippet, file=file, id=knowledge_id(file, snippet.line))
            entries.append(entry)
            if snippet.kind is None:
                entry.status, entry.reason = "not-executable", snippet.not_executable_reason()
                continue
            known = analyses.get(snippet.hash) if analyses else None
            analysis = known if known is not None else analyze(snippet)
            entry.requirements, entry.shape = analysis.requirements, analysis.shape
            if snippet.options.setup and snippet.kind == "python":
                entry.setup = True
                chains.append(Chain([entry]))
                setups.append(entry)
                continue
            joins = snippet.options.continue_ and snippet.kind == "python" and current is not None
            if joins:
                entry.continues = current.entries[-1].snippet.line
                current.entries.append(entry)
            else:
                current = Chain([entry])
                mine.append(current)
            if snippet.kind == "shell":
                current = None  # nothing continues a shell snippet
        for chain in mine:
            if chain.entries[0].snippet.kind == "python":
                chain.setup = list(setups)
        chains.extend(mine)
        for entry in setups:
            _classify(entry, env, profile, frozenset(), False)
        setup_names = frozenset(name for s in setups for name in s.shape.binds)
        setup_unsure = any(s.shape.dynamic or not s.shape.syntax_ok for s in setups)
        for chain in mine:
            names, unsure = (setup_names, setup_unsure) if chain.setup else (frozenset(), False)
            for n, entry in enumerate(chain.entries):
                _classify(entry, env, profile, names, unsure)
                names = entry.known_names
                unsure = entry.names_unsure
                if entry.shape.defines_only:
                    later = {name for e in chain.entries[n + 1:] for name in e.shape.free}
                    entry.only_defines = not (later & set(entry.shape.defines))
    for chain in chains:
        _propagate(chain)
        chain.run = [e for e in chain.entries if e.status is None]
    return entries, [c for c in chains if c.run]


def _classify(entry: Entry, env: Environment, profile: Profile, names_before: frozenset[str], unsure_before: bool) -> None:
    """The verdict kb can give before running, in order of what a careful reader would say first."""
    options, shape = entry.snippet.options, entry.shape
    entry.known_names = names_before.union(shape.binds) if shape.binds else names_before
    entry.names_unsure = unsure_before or shape.dynamic or (entry.snippet.kind == "python" and not shape.syntax_ok)
    if options.problems:
        entry.status, entry.reason = "error", "invalid info string: " + "; ".join(options.problems)
        return
    if options.skip is not None:
        entry.status, entry.reason = "skip", options.skip
        return
    if shape.verdict == "not-executable" or (shape.verdict and not options.expect_error):
        entry.status, entry.reason = shape.verdict, shape.reason
        return
    missing_local = [m for m in shape.local_imports if not env.modules.get(m, True)]
    if missing_local:
        entry.status, entry.reason = "fragment", f"imports {describe_names(missing_local)}: the author's own module (not a package)"
        return
    undefined = [n for n in shape.free if n not in names_before]
    if undefined and not entry.names_unsure and not options.expect_error:  # kb:expect-error may show a NameError on purpose
        entry.status, entry.reason = "fragment", f"uses {describe_names(undefined)} defined elsewhere"
        return
    reasons = unmet(entry.requirements, env, profile)
    if reasons:
        entry.status, entry.reason = "skip", "; ".join(reasons)


def _propagate(chain: Chain) -> None:
    """Once a snippet of a chain (or its kb:setup) cannot run, the ones continuing it cannot either."""
    broken: Entry | None = next((s for s in chain.setup if s.status is not None), None)
    for entry in chain.entries:
        if broken is not None and entry.status is None:
            where = f"its kb:setup fence L{broken.snippet.line}" if broken.setup else f"L{broken.snippet.line}"
            if broken.status == "skip":
                entry.status, entry.reason = "skip", f"continues {where}, which is skipped: {broken.reason}"
            elif broken.status == "fragment":
                entry.status, entry.reason = "fragment", f"continues {where}, a fragment ({broken.reason})"
            elif broken.setup:
                entry.status, entry.reason = "error", f"not run: {where} cannot run ({broken.status}: {broken.reason})"
            else:
                entry.status, entry.reason = "fail", f"not run: it continues {where}, which did not run ({broken.status})"
        elif broken is None and entry.status not in (None, "not-executable"):
            broken = entry  # a not-executable fence (output, a transcript) runs nothing: the chain goes on past it
