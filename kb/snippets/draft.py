"""A draft's snippets run in kb's sandbox before the file they belong to lands: the public way in for writers.

``validate_draft_snippets(text, profile)`` takes a Markdown text that is not in the tree yet (an LLM writer's
section, an offline draft) and returns one verdict per fenced snippet, decided exactly as ``kb validate-snippets``
decides it for the tree: extracted, classified (a snippet that needs CUDA, several GPUs or a missing module is
skipped with that reason), run in the sandbox where it can run. Nothing is written: no snippets/ files, no
results.json, no result cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.snippets.environment import probe_environment
from kb.snippets.extract import extract_snippets
from kb.snippets.profiles import Profile
from kb.snippets.requirements import infer
from kb.snippets.results import FAILING
from kb.snippets.sandbox.pool import Pool
from kb.snippets.tasks import plan
from kb.snippets.validate import apply_result, task_for, worker_config


@dataclass
class SnippetVerdict:
    """One snippet of the draft: the line its fence opens at (1-based, in the text given), status and reason."""

    line: int
    status: str  # a verdict of kb validate-snippets (pass, fail, skip, fragment, ...) or "not-run"
    reason: str | None
    language: str = ""

    @property
    def failing(self) -> bool:
        return self.status in FAILING


def validate_draft_snippets(text: str, profile: Profile, *, name: str = "draft.md") -> list[SnippetVerdict]:
    """Every snippet of ``text`` (read as the file ``name``) classified or run in the sandbox under ``profile``.

    Blocking: call it in a thread from async code. ``name`` matters only where a snippet's verdict depends on
    its file (its path in messages)."""
    found = extract_snippets(name, text)
    if not found:
        return []
    snippets = {name: found}
    inferred = {id(s): infer(s) for s in found if s.kind is not None}
    modules = sorted({m for s in found if s.kind == "python" for m in inferred[id(s)].modules})
    env = probe_environment(profile, modules)
    entries, chains = plan(snippets, env, profile, inferred)
    todo = [c for c in chains if c.run]
    if todo:
        config = worker_config(profile, 1, 0, tasks=len(todo))
        # One draft's few snippets: the worker imports only what they import (the profile's warm list
        # pays off over a whole tree, not here).
        config.preimport = [m for m in config.preimport if m in modules]
        tasks = {f"t{n}": (task_for(c, n, profile, False), c) for n, c in enumerate(todo)}

        def on_result(task, result: dict, wall: float) -> None:
            apply_result(tasks[task.id][1], result, wall, profile)

        with Pool(config, 1, []) as pool:
            pool.run([t for t, _c in tasks.values()], on_result)
    return [SnippetVerdict(line=e.snippet.line, status=e.status or "not-run", reason=e.reason,
                           language=e.snippet.language) for e in entries]
