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

import threading
import time
from pathlib import Path

from kb.snippets.draft import DraftChecker, SnippetVerdict
from kb.snippets.extract import extract_snippets
from kb.snippets.profiles import load_profile

PROFILE = "cpu"
Verdict = SnippetVerdict  # what the writer acts on: kb.snippets' own verdict of one snippet


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
        self.profile_name = profile
        self._runner = runner or self._run  # tests may stand in for the sandbox
        self._known: dict[str, Verdict] = {}
        self._lock = threading.Lock()  # one batch at a time through the one worker
        self._checker: DraftChecker | None = None
        self.seconds = 0.0  # spent in the sandbox, all PARTs together (for the run's timing)
        self.runs = 0

    @property
    def worker_started(self) -> bool:
        return self._checker is not None and self._checker.worker_started

    def close(self) -> None:
        with self._lock:
            if self._checker is not None:
                self._checker.close()
                self._checker = None

    def _run(self, snippets: list[tuple[str, str]]) -> list[Verdict]:
        """Each (info, code) run or classified by kb's sandbox, in order (blocking: the writer calls it in a thread)."""
        if self._checker is None:
            profile = load_profile(self.validators_dir, self.profile_name)
            self._checker = DraftChecker(profile, state_dir=self.state_dir, warm=True)
        got = self._checker.check(_fences(snippets), "knowledge/draft.md")
        if len(got) != len(snippets):
            raise ValueError("a snippet's code closed its own fence")  # the writer's fences never do: a bug
        return got

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
