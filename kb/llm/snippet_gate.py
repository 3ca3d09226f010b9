"""A draft's snippets run in kb's sandbox (kb.snippets, the workspace's CPU profile) before the file lands.

Nothing is written: no snippets/ files, no results.json (``kb validate-snippets`` does that for the
tree). Only what would fail matters here: a snippet that needs CUDA, several GPUs or a missing module is
skipped with that reason (the sandbox decides, as it does for the tree), and it stays as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.snippets.environment import probe_environment
from kb.snippets.extract import extract_snippets
from kb.snippets.profiles import load_profile
from kb.snippets.requirements import infer
from kb.snippets.results import FAILING
from kb.snippets.sandbox.pool import Pool
from kb.snippets.tasks import plan
from kb.snippets.validate import apply_result, task_for, worker_config


@dataclass
class SnippetVerdict:
    line: int  # the fence's line in the text that was run (1-based)
    status: str
    reason: str | None

    @property
    def failing(self) -> bool:
        return self.status in FAILING


def run_snippets(validators_dir, profile_name: str, rel: str, text: str) -> list[SnippetVerdict]:
    """Every snippet of ``text`` (named ``rel``) run or classified by the sandbox; blocking (call in a thread)."""
    found = extract_snippets(rel, text)
    if not found:
        return []
    profile = load_profile(validators_dir, profile_name)
    snippets = {rel: found}
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
    return [SnippetVerdict(line=e.snippet.line, status=e.status or "not-run", reason=e.reason) for e in entries]
