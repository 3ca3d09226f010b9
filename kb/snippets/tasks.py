"""Decide, per snippet, what happens: not executable, skipped (and why), or run; group kb:continue chains."""

from __future__ import annotations

from dataclasses import dataclass, field

from kb.snippets.environment import Environment
from kb.snippets.extract import Snippet
from kb.snippets.profiles import Profile
from kb.snippets.requirements import Requirements, infer


@dataclass
class Entry:
    """One snippet and everything this run learns about it."""

    snippet: Snippet
    file: str  # workspace-relative Markdown path
    id: str
    requirements: Requirements = field(default_factory=Requirements)
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

    @property
    def timeout(self) -> float | None:
        return self.snippet.options.timeout


@dataclass
class Chain:
    """Snippets that run in one process, in order (a snippet plus its kb:continue followers)."""

    entries: list[Entry]
    run: list[Entry] = field(default_factory=list)  # the prefix that runs, fixed once planned


def unmet(req: Requirements, env: Environment, profile: Profile) -> list[str]:
    """Why this machine cannot run a snippet with ``req`` (empty: it can)."""
    reasons = []
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
         inferred: dict[int, Requirements] | None = None) -> tuple[list[Entry], list[Chain]]:
    """Classify every snippet; return all entries and the chains that have something to run.

    ``inferred``: requirements already inferred, by ``id()`` of the snippet.
    """
    entries: list[Entry] = []
    chains: list[Chain] = []
    for file, snippets in files.items():
        current: Chain | None = None
        for snippet in snippets:
            entry = Entry(snippet=snippet, file=file, id=knowledge_id(file, snippet.line))
            entries.append(entry)
            if snippet.kind is None:
                entry.status, entry.reason = "not-executable", snippet.not_executable_reason()
                continue
            known = inferred.get(id(snippet)) if inferred else None
            entry.requirements = known if known is not None else infer(snippet)
            joins = snippet.options.continue_ and snippet.kind == "python" and current is not None
            if joins:
                entry.continues = current.entries[-1].snippet.line
                current.entries.append(entry)
            else:
                current = Chain([entry])
                chains.append(current)
            if snippet.kind == "shell":
                current = None  # nothing continues a shell snippet
            _classify(entry, env, profile)
    for chain in chains:
        _propagate(chain)
        chain.run = [e for e in chain.entries if e.status is None]
    return entries, [c for c in chains if c.run]


def _classify(entry: Entry, env: Environment, profile: Profile) -> None:
    options = entry.snippet.options
    if options.problems:
        entry.status, entry.reason = "error", "invalid info string: " + "; ".join(options.problems)
    elif options.skip is not None:
        entry.status, entry.reason = "skip", options.skip
    else:
        reasons = unmet(entry.requirements, env, profile)
        if reasons:
            entry.status, entry.reason = "skip", "; ".join(reasons)


def _propagate(chain: Chain) -> None:
    """Once a snippet of a chain cannot run, the ones continuing it cannot either."""
    broken: Entry | None = None
    for entry in chain.entries:
        if broken is not None and entry.status is None:
            if broken.status == "skip":
                entry.status, entry.reason = "skip", f"continues L{broken.snippet.line}, which is skipped: {broken.reason}"
            else:
                entry.status, entry.reason = "fail", f"not run: it continues L{broken.snippet.line}, which did not run ({broken.status})"
        elif broken is None and entry.status is not None:
            broken = entry
