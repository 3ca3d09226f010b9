"""A draft's snippets run in kb's sandbox before the file they belong to lands: the public way in for writers.

``validate_draft_snippets(text, profile)`` takes a Markdown text that is not in the tree yet (an LLM writer's
section, an offline draft) and returns one verdict per fenced snippet, decided exactly as ``kb validate-snippets``
decides it for the tree: extracted, classified (a snippet that needs CUDA, several GPUs or a missing module is
skipped with that reason), run in the sandbox where it can run. :class:`DraftChecker` does the same for many
drafts with one warm worker and, where given a state folder, the result cache ``kb validate-snippets`` keeps,
so an example runs once across run-plan, validation and reruns. Nothing else is written.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from pathlib import Path

from kb.snippets.cache import ResultCache
from kb.snippets.environment import probe_environment
from kb.snippets.extract import extract_snippets
from kb.snippets.profiles import Profile
from kb.snippets.requirements import infer
from kb.snippets.results import FAILING
from kb.snippets.sandbox.pool import Pool
from kb.snippets.tasks import plan
# The result cache's reading and writing, as kb validate-snippets does them (one record format, one place).
from kb.snippets.validate import _cached, _remember, apply_result, task_for, worker_config

RAN = {"pass", "defines-only"}
# A run that "passed" only because torch quietly turned the feature off on a machine without a GPU
# (GradScaler, autocast on "cuda") showed nothing: it counts as needing CUDA.
_NO_CUDA_WARNING = re.compile(r"CUDA is not available|no CUDA GPUs are available|CUDA not available", re.I)
_DEPRECATED = re.compile(r"(?:Deprecation|Future)Warning: (.+)")  # "...: DeprecationWarning: `torch.jit.trace` is deprecated. ..."
CUDA_TURNED_OFF = "requires cuda (without a GPU torch turned the feature off and said so)"


@dataclass
class SnippetVerdict:
    """One snippet of the draft: the line its fence opens at (1-based, in the text given), status and reason."""

    line: int
    status: str  # a verdict of kb validate-snippets (pass, fail, skip, fragment, ...) or "not-run"
    reason: str | None
    language: str = ""
    deprecated: str | None = None  # what a DeprecationWarning or FutureWarning the run printed says, if one did

    @property
    def failing(self) -> bool:
        return self.status in FAILING

    @property
    def ran(self) -> bool:
        """It ran to the end here, and did what it shows."""
        return self.status in RAN

    @property
    def ran_without_cuda(self) -> bool:
        """It ran to the end here, but only because torch turned its CUDA feature off: every name it uses is bound."""
        return self.status == "skip" and self.reason == CUDA_TURNED_OFF


class DraftChecker:
    """Checks drafts' snippets under one profile. ``warm``: one worker importing the profile's modules serves
    every draft until :meth:`close` (worth it over many drafts); else each check starts a worker importing
    only what its snippets import. ``state_dir``: share ``kb validate-snippets``' result cache there."""

    def __init__(self, profile: Profile, *, state_dir: Path | None = None, warm: bool = False) -> None:
        self.profile = profile
        self.warm = warm
        self._cache = ResultCache(state_dir) if state_dir is not None else None
        self._pool: Pool | None = None

    def __enter__(self) -> DraftChecker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def worker_started(self) -> bool:
        """Whether a warm worker runs (a check answered from the result cache starts none)."""
        return self._pool is not None

    def _warm_pool(self) -> Pool:
        if self._pool is None:
            self._pool = Pool(worker_config(self.profile, 1, 0), 1, [])
            weakref.finalize(self, self._pool.close)
        return self._pool

    def check(self, text: str, name: str = "draft.md") -> list[SnippetVerdict]:
        """One verdict per fenced snippet of ``text`` (read as the file ``name``), in order. Blocking."""
        found = extract_snippets(name, text)
        if not found:
            return []
        profile = self.profile
        inferred = {id(s): infer(s) for s in found if s.kind is not None}
        modules = sorted({m for s in found if s.kind == "python" for m in inferred[id(s)].modules})
        env = probe_environment(profile, modules)
        entries, chains = plan({name: found}, env, profile, inferred)
        cache, fingerprint = self._cache, env.fingerprint
        if cache is not None:
            for chain in chains:
                if len(chain.entries) == 1:  # a lone snippet: the key validation gives it
                    chain.entries[0].key = chain.entries[0].snippet.hash
        todo = [c for c in chains if c.run and not (cache is not None and _cached(c, cache, fingerprint, env, profile))]
        if todo:
            tasks = {f"t{n}": (task_for(c, n, profile, False), c) for n, c in enumerate(todo)}

            def on_result(task, result: dict, wall: float) -> None:
                chain = tasks[task.id][1]
                apply_result(chain, result, wall, profile)
                if cache is not None:
                    _remember(chain, cache, fingerprint)

            if self.warm:
                self._warm_pool().run([t for t, _c in tasks.values()], on_result)
            else:
                config = worker_config(profile, 1, 0, tasks=len(todo))
                # A few snippets: the worker imports only what they import (the profile's warm list pays off
                # over a whole tree, not here).
                config.preimport = [m for m in config.preimport if m in modules]
                with Pool(config, 1, []) as pool:
                    pool.run([t for t, _c in tasks.values()], on_result)
            if cache is not None:
                cache.save()
        by_line = {e.snippet.line: e for e in entries}
        out = []
        for snippet in found:
            entry = by_line.get(snippet.line)
            status = (entry.status if entry else None) or "not-run"
            reason = entry.reason if entry else None
            if status in RAN and entry is not None and _NO_CUDA_WARNING.search(entry.stderr_tail or ""):
                status, reason = "skip", CUDA_TURNED_OFF
            warned = _DEPRECATED.search(entry.stderr_tail or "") if entry is not None else None
            out.append(SnippetVerdict(line=snippet.line, status=status, reason=reason, language=snippet.language,
                                      deprecated=warned.group(1).strip() if warned else None))
        return out


def validate_draft_snippets(text: str, profile: Profile, *, name: str = "draft.md") -> list[SnippetVerdict]:
    """Every snippet of ``text`` (read as the file ``name``) classified or run in the sandbox under ``profile``.

    Blocking: call it in a thread from async code. ``name`` matters only where a snippet's verdict depends on
    its file (its path in messages)."""
    with DraftChecker(profile) as checker:
        return checker.check(text, name)
