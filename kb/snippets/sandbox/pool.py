"""kb's side of the sandbox: start the warm worker, feed it tasks, collect results.

One worker process imports the profile's modules once and forks a child per task; this pool
decides what may run at once (CPU slots, one task per GPU) and never imports torch itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import KbError
from kb.snippets.sandbox.confine import clean_environment

WORKER = Path(__file__).with_name("worker.py")


@dataclass
class SandboxTask:
    """One unit of work for the worker: a snippet, or a chain of kb:continue snippets."""

    id: str
    message: dict  # what the worker receives (see worker.py)
    gpus: int = 0
    submitted: float = 0.0
    deaths: int = 0  # times the worker died while this task ran


@dataclass
class WorkerConfig:
    """Settings the worker needs (a profile, flattened for a process that has no kb)."""

    interpreter: str
    preimport: list[str]
    slots: int
    threads: int
    memory_limit_mb: int
    max_processes: int
    max_file_mb: int
    sandbox_uid: int
    tail_chars: int
    extra_env: dict = field(default_factory=dict)
    huge_pages: bool = False  # back the worker's heap with 2 MiB pages (cheaper forks, ~0.2 s once)
    pass_env: list[str] = field(default_factory=list)  # variables (NAME or PREFIX*) the profile lets through
    readable: list[str] = field(default_factory=list)  # paths the profile grants read-only
    hidden: list[str] = field(default_factory=list)  # never shown, even when on the interpreter's sys.path
    scratch_mb: int = 1024
    require_isolation: bool = False
    confine: bool = True  # False only to measure what the confinement costs (bench/bench_snippets.py)

    def as_json(self) -> str:
        return json.dumps({
            "confine": self.confine,
            "pass_env": self.pass_env,
            "readable": self.readable,
            "hidden": self.hidden + [str(Path.home())],
            "scratch_mb": self.scratch_mb,
            "require_isolation": self.require_isolation,
            "preimport": self.preimport,
            "slots": self.slots,
            "memory_limit_mb": self.memory_limit_mb,
            "max_processes": self.max_processes,
            "max_file_mb": self.max_file_mb,
            "sandbox_uid": self.sandbox_uid,
            "tail_chars": self.tail_chars,
            "huge_pages": self.huge_pages,
        })

    def environment(self) -> dict:
        """The worker's environment: an allow-list (never kb's keys), and thread counts, which are
        read when torch loads, so set them now. PYTHONPATH is not on the list: snippets see the
        interpreter's own packages, not kb's tree."""
        env = clean_environment(dict(os.environ), self.pass_env)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(self.threads)
        env.update(self.extra_env)
        return env


class IsolationError(KbError):
    """--require-isolation, and the sandbox cannot isolate snippets fully here."""


def require_complete(isolation: dict, required: bool) -> None:
    """Refuse to run (exit 2) when isolation is required and some of it is missing."""
    if required and not isolation.get("complete"):
        missing = ", ".join(isolation.get("missing") or ["unknown"])
        raise IsolationError(
            f"--require-isolation: this machine cannot isolate snippets fully (missing: {missing}; "
            f"filesystem: {isolation.get('filesystem', '?')}); no snippet was run"
        )


ResultCallback = Callable[[SandboxTask, dict, float], None]
MAX_WORKER_DEATHS = 3  # then the rest of the run is reported as not run, not retried forever


class Pool:
    """A warm worker plus a scheduler: ``cpu_slots`` CPU tasks at once, one task per GPU."""

    def __init__(self, config: WorkerConfig, cpu_slots: int, devices: list[str] | None = None) -> None:
        self.config = config
        self.cpu_slots = max(1, cpu_slots)
        self.devices = list(devices or [])
        self.proc: subprocess.Popen | None = None
        self.ready: dict = {}

    def __enter__(self) -> Pool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> dict:
        """Start the worker and wait until it has imported everything; returns its ready message."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the worker without waiting: it imports torch while kb does other work."""
        if self.proc is not None:
            return
        try:
            self.proc = subprocess.Popen(
                [os.path.abspath(self.config.interpreter), "-u", str(WORKER), self.config.as_json()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self.config.environment(),
                cwd="/",
                start_new_session=True,  # a Ctrl-C in kb's terminal is kb's to handle
            )
        except OSError as exc:
            raise KbError(f"cannot start the validator interpreter {self.config.interpreter!r}: {exc}") from None

    def wait_ready(self) -> dict:
        if self.ready:
            return self.ready
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise KbError(f"the snippet worker ({self.config.interpreter}) exited before it was ready")
        self.ready = json.loads(line)
        return self.ready

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()  # EOF: the worker kills what runs and exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def _send(self, message: dict) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def run(self, tasks: list[SandboxTask], on_result: ResultCallback) -> None:
        """Run every task; ``on_result(task, result, wall_seconds)`` as each finishes.

        Should the worker die (killed from outside, out of memory), a fresh one takes over: the
        tasks it held run again, each alone, so that only a task during which a worker died
        twice is blamed; the other snippets' results are their own.
        """
        self.start()
        queue = list(tasks)
        inflight: dict[str, tuple[SandboxTask, list[str]]] = {}
        free = list(self.devices)
        cpu_busy = 0
        deaths = 0
        while queue or inflight:
            for task in list(queue):
                if any(t.deaths for t, _ in inflight.values()):
                    break  # a suspect runs alone
                if task.deaths and inflight:
                    continue
                if task.gpus:
                    if len(free) < task.gpus:
                        continue
                    taken, free = free[: task.gpus], free[task.gpus :]
                    env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, taken))}
                else:
                    if cpu_busy >= self.cpu_slots:
                        continue
                    taken, env = [], {"CUDA_VISIBLE_DEVICES": ""}  # CPU snippets never see a GPU
                    cpu_busy += 1
                message = dict(task.message)
                message["env"] = {**(message.get("env") or {}), **env}
                task.submitted = time.perf_counter()
                self._send({"op": "run", "task": message})
                inflight[task.id] = (task, taken)
                queue.remove(task)
            if not inflight:
                raise KbError("a snippet needs more GPUs than this machine has")  # filtered earlier; never spin
            line = self.proc.stdout.readline()
            if not line:
                deaths += 1
                code = self._reap_dead_worker()
                held = [t for t, _ in inflight.values()]
                inflight.clear()
                free, cpu_busy = list(self.devices), 0
                for task in held:
                    task.deaths += 1
                    if task.deaths >= 2 or deaths > MAX_WORKER_DEATHS:
                        self._blame(task, code, on_result)
                    else:
                        queue.insert(0, task)
                if deaths > MAX_WORKER_DEATHS:
                    for task in queue:
                        self._blame(task, code, on_result)
                    return
                if queue:
                    self.start()
                continue
            result = json.loads(line)
            if result.get("op") != "result":
                continue
            task, taken = inflight.pop(result["task"])
            if taken:
                free = [d for d in self.devices if d in free or d in taken]
            else:
                cpu_busy -= 1
            on_result(task, result, time.perf_counter() - task.submitted)

    def _reap_dead_worker(self) -> int | None:
        proc, self.proc, self.ready = self.proc, None, {}
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    @staticmethod
    def _blame(task: SandboxTask, code: int | None, on_result: ResultCallback) -> None:
        """Report a task the worker died under (twice, or too often to go on)."""
        facts = [
            {"index": i, "outcome": "setup-error", "message": f"the snippet worker died while it ran (exit status {code})"}
            for i in range(len(task.message["snippets"]))
        ]
        on_result(task, {"op": "result", "task": task.id, "snippets": facts}, 0.0)
