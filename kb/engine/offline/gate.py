"""The offline engine's snippet check: a draft's candidate examples run in kb's sandbox before the file lands.

The same sandbox and rules as ``kb validate-snippets`` (kb.snippets), with the CPU profile, so
the verdict the writer acts on is the one validation will give the file: a fresh run never writes
a failing snippet, and the file a run writes does not depend on whether the machine has a GPU.
Snippets that need CUDA are classified, not run. Verdicts are kept by fence hash for the writer's
lifetime (one run), and in the result cache ``kb validate-snippets`` keeps under .kb/ (same keys: the
snippet's hash and the environment's fingerprint), so an example runs once across run-plan, validation
and reruns. Nothing else is written.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from kb.snippets.cache import ResultCache
from kb.snippets.environment import probe_environment
from kb.snippets.extract import extract_snippets
from kb.snippets.profiles import load_profile
from kb.snippets.requirements import infer
from kb.snippets.results import FAILING
from kb.snippets.sandbox.pool import Pool
from kb.snippets.tasks import plan
# The result cache's reading and writing, as kb validate-snippets does them (one record format, one place).
from kb.snippets.validate import _cached, _remember, apply_result, task_for, worker_config

PROFILE = "cpu"
RAN = {"pass", "defines-only"}
# A run that "passed" only because torch quietly turned the feature off on a machine without a GPU
# (GradScaler, autocast on "cuda") showed nothing: it counts as needing CUDA.
_NO_CUDA_WARNING = re.compile(r"CUDA is not available|no CUDA GPUs are available|CUDA not available", re.I)


@dataclass(frozen=True)
class Verdict:
    status: str  # as kb validate-snippets says it: pass, defines-only, fail, skip, fragment, ...
    reason: str | None = None

    @property
    def ran(self) -> bool:
        """It ran to the end here, and did what it shows."""
        return self.status in RAN

    @property
    def failing(self) -> bool:
        return self.status in FAILING


def fence_hash(info: str, code: str) -> str | None:
    """The hash ``kb validate-snippets`` gives the fence the writer renders for (info, code)."""
    found = extract_snippets("example.md", f"```{info}\n{code}\n```\n")
    return found[0].hash if len(found) == 1 else None


def _fences(snippets: list[tuple[str, str]]) -> str:
    return "".join(f"```{info}\n{code}\n```\n\n" for info, code in snippets)


class SnippetGate:
    """Runs the writer's candidate snippets in the sandbox, once each per run, one batch at a time.

    One warm worker serves the whole run (it imports torch once, not once per PART); it exits
    with :meth:`close`, or when kb does (its stdin closes). The worker is configured exactly as
    kb validate-snippets configures its own (the profile's imports, limits), so their verdicts,
    and the result cache they share, are the same.
    """

    def __init__(self, validators_dir: Path, profile: str = PROFILE, runner=None, state_dir: Path | None = None):
        self.validators_dir = validators_dir
        self.state_dir = state_dir  # where kb validate-snippets keeps its result cache (None: no cache)
        self._cache: ResultCache | None = None
        self.profile_name = profile
        self._runner = runner or self._run  # tests may stand in for the sandbox
        self._known: dict[str, Verdict] = {}
        self._lock = threading.Lock()  # one batch at a time through the one worker
        self._profile = None
        self._pool: Pool | None = None
        self.seconds = 0.0  # spent in the sandbox, all PARTs together (for the run's timing)
        self.runs = 0

    def _start(self) -> Pool:
        if self._profile is None:
            self._profile = load_profile(self.validators_dir, self.profile_name)
        if self._pool is None:
            self._pool = Pool(worker_config(self._profile, 1, 0), 1, [])
            weakref.finalize(self, self._pool.close)
        return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _run(self, snippets: list[tuple[str, str]]) -> list[Verdict]:
        """Each (info, code) run or classified by kb's sandbox, in order (blocking: the writer calls it in a thread)."""
        found = extract_snippets("knowledge/draft.md", _fences(snippets))
        if len(found) != len(snippets):
            raise ValueError("a snippet's code closed its own fence")  # the writer's fences never do: a bug
        pool = self._start()
        profile = self._profile
        inferred = {id(s): infer(s) for s in found if s.kind is not None}
        modules = sorted({m for s in found if s.kind == "python" for m in inferred[id(s)].modules})
        env = probe_environment(profile, modules)
        entries, chains = plan({"knowledge/draft.md": found}, env, profile, inferred)
        if self._cache is None and self.state_dir is not None:
            self._cache = ResultCache(self.state_dir)
        cache, fingerprint = self._cache, env.fingerprint
        for chain in chains:
            for entry in chain.entries:
                entry.key = entry.snippet.hash  # one snippet per chain, no kb:setup: the key validation gives it
        todo = [c for c in chains if c.run and not (cache is not None and _cached(c, cache, fingerprint, env, profile))]
        if todo:
            tasks = {f"t{n}": (task_for(c, n, profile, False), c) for n, c in enumerate(todo)}

            def on_result(task, result: dict, wall: float) -> None:
                chain = tasks[task.id][1]
                apply_result(chain, result, wall, profile)
                if cache is not None:
                    _remember(chain, cache, fingerprint)

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
                status, reason = "skip", "requires cuda (without a GPU torch turned the feature off and said so)"
            out.append(Verdict(status, reason))
        return out

    def verdicts(self, snippets: list[tuple[str, str]]) -> list[Verdict]:
        """The verdict for each (info, code); those not seen before in this run are run together."""
        keys = [fence_hash(info, code) or f"{info}\n{code}" for info, code in snippets]
        with self._lock:
            todo = list(dict.fromkeys(k for k in keys if k not in self._known))
            if todo:
                first = {k: s for k, s in zip(keys, snippets)}
                started = time.perf_counter()
                got = self._runner([first[k] for k in todo])
                self.seconds += time.perf_counter() - started
                self.runs += 1
                self._known.update(zip(todo, got))
            return [self._known[k] for k in keys]
