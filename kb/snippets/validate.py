"""The pipeline behind `kb validate-snippets`: collect, classify, reuse cached results, run, write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import PathError
from kb.snippets.cache import ResultCache, chain_keys
from kb.snippets.environment import probe_environment
from kb.snippets.extract import Snippet, extract_snippets
from kb.snippets.gpu import devices, gpu_record, require_cuda
from kb.snippets.outcome import classify
from kb.snippets.profiles import Profile, load_profile
from kb.snippets.redact import known_secrets, redact_tree
from kb.snippets.requirements import infer
from kb.snippets.results import FAILING, build_document, entry_json, load_results, write_results, write_snippet_files
from kb.snippets.sandbox.pool import Pool, SandboxTask, WorkerConfig, require_complete
from kb.snippets.tasks import Chain, Entry, plan
from kb.workspace import Workspace

MARKDOWN = (".md", ".markdown")


@dataclass
class Options:
    """What the user asked for on the command line."""

    paths: list[Path] = field(default_factory=list)
    gpu: bool = False
    ray: str | None = None
    force: bool = False
    profile: str | None = None
    jobs: int | None = None
    require_isolation: bool = False


@dataclass
class Outcome:
    document: dict
    entries: list[Entry]
    ran: int = 0
    cached: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> list[dict]:
        """This run's snippets as results.json rows."""
        fingerprint = self.document["environment"].get("fingerprint", "")
        return [entry_json(e, fingerprint) for e in self.entries]

    @property
    def failed(self) -> bool:
        return any(e.status in FAILING for e in self.entries)


Progress = Callable[[int, int, Entry | None], None]


def collect_files(workspace: Workspace, paths: list[Path]) -> list[Path]:
    """Markdown files named (folders searched), or all of knowledge/ when none are named."""
    if not paths:
        return sorted(p for p in workspace.knowledge_dir.rglob("*") if p.suffix in MARKDOWN and p.is_file())
    found: list[Path] = []
    for raw in paths:
        path = workspace.inside(raw, "path")
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in MARKDOWN and p.is_file()))
        elif path.is_file():
            if path.suffix not in MARKDOWN:
                raise PathError(f"{raw} is not a Markdown file")
            found.append(path)
        else:
            raise PathError(f"{raw} does not exist")
    return sorted(dict.fromkeys(found))


def read_snippets(workspace: Workspace, files: list[Path]) -> dict[str, list[Snippet]]:
    out: dict[str, list[Snippet]] = {}
    for path in files:
        rel = workspace.rel(path)
        out[rel] = extract_snippets(rel, path.read_text(encoding="utf-8", errors="replace"))
    return out


# Collapsing the warm worker's heap to huge pages costs about 0.2 s once and saves about 7 ms
# per fork (bench/bench_snippets.py): worth it from a few dozen tasks on.
HUGE_PAGES_MIN_TASKS = 32


def worker_config(profile: Profile, slots: int, gpu_slots: int, tasks: int = 0) -> WorkerConfig:
    return WorkerConfig(
        interpreter=profile.python(),
        preimport=list(profile.preimport),
        slots=slots + gpu_slots,
        threads=profile.threads(),
        memory_limit_mb=profile.memory_limit_mb,
        max_processes=profile.max_processes,
        max_file_mb=profile.max_file_mb,
        sandbox_uid=profile.sandbox_uid,
        tail_chars=profile.tail_chars,
        huge_pages=tasks >= HUGE_PAGES_MIN_TASKS,
        **profile.sandbox_settings(),
    )


def task_for(chain: Chain, number: int, profile: Profile, gpu_mode: bool) -> SandboxTask:
    """The worker's message for the runnable prefix of a chain."""
    run = chain.run
    reqs = [e.requirements for e in run]
    gpus = max((r.gpus for r in reqs), default=0)
    if gpu_mode and not gpus and any(r.mentions_cuda for r in reqs):
        gpus = 1  # guarded CUDA code (`if torch.cuda.is_available()`) gets a device on a GPU run
    message = {
        "id": f"t{number}",
        "kind": run[0].snippet.kind,
        "network": any(r.network for r in reqs),
        "cuda": gpus > 0,
        "memory_limit_mb": profile.memory_limit_mb,
        "snippets": [
            {
                "code": e.snippet.code,
                "filename": e.file,
                "first_line": e.snippet.code_line,
                "timeout": e.timeout or profile.timeout_s,
                "language": e.snippet.language,
            }
            for e in run
        ],
    }
    return SandboxTask(id=message["id"], message=message, gpus=gpus)


def apply_result(chain: Chain, result: dict, wall: float, profile: Profile) -> None:
    """Fill the chain's runnable entries from the worker's facts."""
    run = chain.run
    facts = result.get("snippets", [])
    for entry, fact in zip(run, facts):
        entry.status, entry.reason = classify(fact, entry.snippet.options.expect_error, profile.max_processes)
        if fact.get("outcome") == "not-run" and fact.get("after") is not None:
            before = run[int(fact["after"])]
            entry.reason = f"not run: it continues L{before.snippet.line}, which ended its process ({before.status})"
        entry.seconds = float(fact.get("seconds") or 0.0)
        entry.peak_memory_mb = fact.get("peak_memory_mb")
        entry.stdout_tail = fact.get("stdout_tail", "")
        entry.stderr_tail = fact.get("stderr_tail", "")
        entry.wall_seconds = wall if len(run) == 1 else None


def _cached(chain: Chain, cache: ResultCache, fingerprint: str) -> bool:
    """Reuse a whole chain's results when every snippet of it is unchanged."""
    hits = [cache.get(fingerprint, e.key) for e in chain.run]
    if not all(hits):
        return False
    for entry, hit in zip(chain.run, hits):
        entry.status, entry.reason = hit["status"], hit.get("reason")
        entry.seconds = float(hit.get("seconds") or 0.0)
        entry.peak_memory_mb = hit.get("peak_memory_mb")
        entry.stdout_tail, entry.stderr_tail = hit.get("stdout_tail", ""), hit.get("stderr_tail", "")
        entry.cached = True
    return True


def _remember(chain: Chain, cache: ResultCache, fingerprint: str) -> None:
    for entry in chain.run:
        if entry.key:
            cache.put(fingerprint, entry.key, {
                "status": entry.status, "reason": entry.reason, "seconds": entry.seconds,
                "peak_memory_mb": entry.peak_memory_mb, "stdout_tail": entry.stdout_tail, "stderr_tail": entry.stderr_tail,
            })


def run_validation(workspace: Workspace, options: Options, progress: Progress | None = None) -> Outcome:
    """Validate the snippets of the named files (default: knowledge/); write snippets/ and return the outcome."""
    started = time.perf_counter()
    files = collect_files(workspace, options.paths)
    snippets = read_snippets(workspace, files)
    name = options.profile or (workspace.config.validate_.gpu_profile if options.gpu else workspace.config.validate_.profile)
    profile = load_profile(workspace.validators_dir, name)
    # Each snippet's AST is walked once: for the modules to probe here, and by plan() to classify it.
    inferred = {id(s): infer(s) for items in snippets.values() for s in items if s.kind is not None}
    modules = sorted({m for items in snippets.values() for s in items if s.kind == "python" for m in inferred[id(s)].modules})

    backend = None
    if options.ray:
        from kb.snippets.ray_backend import RayBackend

        backend = RayBackend(options.ray, profile)
        backend.hidden = [str(workspace.root)]
        env = backend.environment(modules)
        if options.gpu:
            require_cuda(env, where=f"the Ray cluster at {options.ray}")
    else:
        env = probe_environment(profile, modules)
        if options.gpu:
            require_cuda(env)
            env.gpus = env.gpus[: len(devices(env))]  # CUDA_VISIBLE_DEVICES may hide some

    entries, chains = plan(snippets, env, profile, inferred)
    secrets = known_secrets(workspace.config)
    fingerprint = env.fingerprint
    cache = ResultCache(workspace.state_dir)
    for chain in chains:
        for entry, key in zip(chain.entries, chain_keys([e.snippet.hash for e in chain.entries])):
            entry.key = key
    todo = [c for c in chains if options.force or not _cached(c, cache, fingerprint)]
    total, done = len(entries), len(entries) - sum(len(c.run) for c in todo)
    if progress:
        progress(done, total, None)

    rels = list(snippets)
    isolation: dict = load_results(workspace).get("isolation", {}) if not todo else {}
    pool = None
    if todo and backend is None:
        gpu_devices = devices(env) if options.gpu else []
        slots = options.jobs or profile.slots()
        config = worker_config(profile, slots, len(gpu_devices), tasks=sum(1 for c in todo if c.run))
        config.hidden, config.require_isolation = [str(workspace.root)], options.require_isolation
        pool = Pool(config, slots, gpu_devices)
        pool.launch()  # the worker imports torch while the snippet files are written
    try:
        write_snippet_files(workspace.root, entries, rels)
    except BaseException:
        if pool is not None:
            pool.close()
        raise
    if todo:
        tasks = {f"t{n}": (task_for(c, n, profile, options.gpu), c) for n, c in enumerate(todo)}

        def on_result(task: SandboxTask, result: dict, wall: float) -> None:
            nonlocal done
            chain = tasks[task.id][1]
            apply_result(chain, redact_tree(result, secrets), wall, profile)
            _remember(chain, cache, fingerprint)
            done += len(chain.run)
            if progress:
                progress(done, total, chain.entries[-1])

        work = [t for t, _ in tasks.values()]
        if backend is not None:
            try:
                isolation = backend.run(work, on_result, options.require_isolation)
            finally:
                backend.close()
        else:
            with pool:
                ready = pool.start()
                isolation = dict(ready.get("isolation", {}))
                require_complete(isolation, options.require_isolation)
                isolation["worker_startup_seconds"] = round(ready.get("startup_seconds", 0.0), 3)
                isolation["preimported"] = ready.get("preimported", [])
                isolation["worker_huge_pages_mb"] = ready.get("huge_pages_mb", 0)
                if ready.get("preimport_errors"):
                    isolation["preimport_errors"] = ready["preimport_errors"]
                pool.run(work, on_result)
    elif backend is not None:
        backend.close()
    if not options.paths:
        cache.prune(fingerprint, {e.key for e in entries if e.key})
    cache.save()

    environment = {**env.as_dict(), **gpu_record(env)}
    previous = load_results(workspace)
    document = redact_tree(build_document(entries, environment, isolation, previous, set(rels), workspace.root), secrets)
    write_results(workspace.root, document)
    return Outcome(
        document=document,
        entries=entries,
        ran=sum(len(c.run) for c in todo),
        cached=sum(e.cached for e in entries),
        seconds=time.perf_counter() - started,
    )

