"""The pipeline behind `kb validate-snippets`: collect, classify, reuse cached results, run, write."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import PathError
from kb.snippets.analysis import Analysis, analysis_key, analyze
from kb.snippets.cache import AnalysisCache, ResultCache, chain_keys
from kb.snippets.environment import Environment, probe_environment
from kb.snippets.extract import Snippet, extract_snippets
from kb.snippets.gpu import devices, gpu_record, require_cuda
from kb.snippets.options import parse_info
from kb.snippets.outcome import Context, classify
from kb.snippets.profiles import Profile, load_profile
from kb.snippets.redact import known_secrets, redact_tree
from kb.snippets.results import FAILING, build_document, entry_json, load_results, same_results, write_results, write_snippet_files
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
    this_run: list[dict] | None = None  # the rows of this run's entries, as written

    @property
    def rows(self) -> list[dict]:
        """This run's snippets as results.json rows."""
        if self.this_run is not None:
            return self.this_run
        fingerprint = self.document["environment"].get("fingerprint", "")
        return [entry_json(e, fingerprint) for e in self.entries]

    @property
    def failed(self) -> bool:
        return any(e.status in FAILING for e in self.entries)


Progress = Callable[[int, int, Entry | None], None]


def collect_files(workspace: Workspace, paths: list[Path]) -> list[Path]:
    """Markdown files named (folders searched), or every knowledge file of the layout when none are named."""
    if not paths:
        if not workspace.default_layout:  # not the drops, plans, .kb/ or a built site an adopted tree holds
            return [workspace.root / rel for rel in workspace.knowledge_files(MARKDOWN)]
        return _markdown_under(workspace.knowledge_dir)
    found: list[Path] = []
    for raw in paths:
        path = workspace.inside(raw, "path")
        if path.is_dir():
            found.extend(_markdown_under(path))
        elif path.is_file():
            if path.suffix not in MARKDOWN:
                raise PathError(f"{raw} is not a Markdown file")
            found.append(path)
        else:
            raise PathError(f"{raw} does not exist")
    return sorted(dict.fromkeys(found))


def _markdown_under(folder: Path) -> list[Path]:
    """Markdown files under ``folder``, sorted (os.walk: pathlib's rglob costs a second on 1,000 files)."""
    out = []
    for base, dirs, names in os.walk(folder):
        dirs.sort()
        out.extend(os.path.join(base, n) for n in names if n.endswith(MARKDOWN))
    return sorted(Path(p) for p in out if os.path.isfile(p))


def read_snippets(workspace: Workspace, files: list[Path], cache: AnalysisCache | None = None) -> dict[str, list[Snippet]]:
    """The fences of each file; an unchanged file (same content digest) is taken from ``cache`` unparsed."""
    out: dict[str, list[Snippet]] = {}
    for path in files:
        rel = workspace.rel(path)
        raw = path.read_bytes()
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        known = cache.fences(rel, digest) if cache is not None else None
        if known is not None:
            out[rel] = [
                Snippet(file=rel, line=line, end_line=end, index=index, language=language, info=info, code=code,
                        options=parse_info(info)[1], hash=digest_)
                for line, end, index, language, info, code, digest_ in known
            ]
            continue
        snippets = extract_snippets(rel, raw.decode("utf-8", errors="replace"))
        out[rel] = snippets
        if cache is not None:
            cache.put_fences(rel, digest, [[s.line, s.end_line, s.index, s.language, s.info, s.code, s.hash] for s in snippets])
    return out


def analyze_all(snippets: dict[str, list[Snippet]], cache: AnalysisCache | None = None) -> dict[str, Analysis]:
    """Shape and requirements of every runnable-language snippet, by hash (read once per distinct text)."""
    out: dict[str, Analysis] = {}
    for items in snippets.values():
        for snippet in items:
            if snippet.kind is None or snippet.hash in out:
                continue
            data = cache.analysis(snippet.hash) if cache is not None else None
            if data is not None:
                try:
                    out[snippet.hash] = Analysis.from_dict(data)
                    continue
                except (KeyError, TypeError):
                    pass
            analysis = out[snippet.hash] = analyze(snippet)
            if cache is not None:
                cache.put_analysis(snippet.hash, analysis.as_dict())
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
    """The worker's message for the runnable prefix of a chain, after the file's kb:setup fences."""
    run = [*chain.setup, *chain.run]
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


def context_for(entry: Entry, env: Environment, profile: Profile) -> Context:
    """What the verdict needs to know about ``entry`` besides the sandbox's facts."""
    return Context(
        expect_error=entry.snippet.options.expect_error,
        max_processes=profile.max_processes,
        known_names=entry.known_names,
        imports=list(entry.shape.imports),
        modules=env.modules,
        cuda_usable=env.cuda_usable,
        python=env.python,
        only_defines=entry.only_defines and not entry.setup,
        defines=list(entry.shape.defines),
        file=entry.file,
    )


def apply_result(chain: Chain, result: dict, wall: float, profile: Profile, env: Environment | None = None) -> None:
    """Fill the chain's runnable entries from the worker's facts (the first ones are its kb:setup fences')."""
    run = chain.run
    facts = result.get("snippets", [])
    setup_facts, facts = facts[: len(chain.setup)], facts[len(chain.setup):]
    env = env or Environment(python="", torch=None, cuda=None)
    failed_setup = next(((s, f) for s, f in zip(chain.setup, setup_facts) if f.get("outcome") != "ok"), None)
    for entry, fact in zip(run, facts):
        entry.status, entry.reason = classify(fact, entry.snippet.options.expect_error, profile.max_processes, context_for(entry, env, profile))
        # What the sandbox saw, kept with the result: a rerun judges it again by the rules of the kb
        # running then (a NameError that an older kb called a failure is a fragment now), without rerunning it.
        entry.fact = {k: v for k, v in fact.items() if k not in ("stdout_tail", "stderr_tail")}
        if failed_setup is not None:
            entry.fact = None
            fence, bad = failed_setup
            status, reason = classify(bad, False, profile.max_processes, context_for(fence, env, profile))
            entry.status, entry.reason = "error", f"not run: its kb:setup fence L{fence.snippet.line} failed ({status}: {reason})"
        elif fact.get("outcome") == "not-run" and fact.get("after") is not None:
            index = int(fact["after"]) - len(chain.setup)
            before = run[index] if 0 <= index < len(run) else chain.setup[int(fact["after"])]
            entry.reason = f"not run: it continues L{before.snippet.line}, which ended its process ({before.status})"
            entry.fact = None
        entry.seconds = float(fact.get("seconds") or 0.0)
        entry.peak_memory_mb = fact.get("peak_memory_mb")
        entry.stdout_tail = fact.get("stdout_tail", "")
        entry.stderr_tail = fact.get("stderr_tail", "")
        entry.wall_seconds = wall if len(run) == 1 and not chain.setup else None


def _cached(chain: Chain, cache: ResultCache, fingerprint: str, env: Environment, profile: Profile) -> bool:
    """Reuse a whole chain's results when every snippet of it is unchanged; the facts kept are judged again."""
    hits = [cache.get(fingerprint, e.key) for e in chain.run]
    if not all(hits):
        return False
    for entry, hit in zip(chain.run, hits):
        entry.status, entry.reason = hit["status"], hit.get("reason")
        entry.seconds = float(hit.get("seconds") or 0.0)
        entry.peak_memory_mb = hit.get("peak_memory_mb")
        entry.stdout_tail, entry.stderr_tail = hit.get("stdout_tail", ""), hit.get("stderr_tail", "")
        entry.cached = True
        fact = hit.get("fact")
        if isinstance(fact, dict):
            entry.fact = fact
            fact = {**fact, "stdout_tail": entry.stdout_tail, "stderr_tail": entry.stderr_tail}
            entry.status, entry.reason = classify(fact, entry.snippet.options.expect_error, profile.max_processes, context_for(entry, env, profile))
    return True


def _remember(chain: Chain, cache: ResultCache, fingerprint: str) -> None:
    for entry in chain.run:
        if entry.key:
            cache.put(fingerprint, entry.key, {
                "status": entry.status, "reason": entry.reason, "seconds": entry.seconds,
                "peak_memory_mb": entry.peak_memory_mb, "stdout_tail": entry.stdout_tail, "stderr_tail": entry.stderr_tail,
                "fact": entry.fact,
            })


def run_validation(workspace: Workspace, options: Options, progress: Progress | None = None) -> Outcome:
    """Validate the snippets of the named files (default: knowledge/); write snippets/ and return the outcome."""
    started = time.perf_counter()
    files = collect_files(workspace, options.paths)
    analysis_cache = AnalysisCache(workspace.state_dir, analysis_key())
    snippets = read_snippets(workspace, files, analysis_cache)
    name = options.profile or (workspace.config.validate_.gpu_profile if options.gpu else workspace.config.validate_.profile)
    profile = load_profile(workspace.validators_dir, name)
    # Each distinct snippet is read once (and kept by hash): for the modules to probe here, and by plan() to classify it.
    analyses = analyze_all(snippets, analysis_cache)
    modules = sorted({m for a in analyses.values() for m in a.requirements.modules} | {m for a in analyses.values() for m in a.shape.local_imports})

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

    entries, chains = plan(snippets, env, profile, analyses)
    secrets = known_secrets(workspace.config)
    fingerprint = env.fingerprint
    cache = ResultCache(workspace.state_dir)
    for chain in chains:
        # A snippet's result depends on the kb:setup fences and the snippets before it in its process.
        keys = chain_keys([e.snippet.hash for e in chain.setup] + [e.snippet.hash for e in chain.entries])
        for entry, key in zip(chain.entries, keys[len(chain.setup):]):
            entry.key = key
    todo = [c for c in chains if options.force or not _cached(c, cache, fingerprint, env, profile)]
    total, done = len(entries), len(entries) - sum(len(c.run) for c in todo)
    if progress:
        progress(done, total, None)

    rels = list(snippets)
    previous = load_results(workspace)
    isolation: dict = previous.get("isolation", {}) if not todo else {}
    pool = None
    if todo and backend is None:
        gpu_devices = devices(env) if options.gpu else []
        slots = options.jobs or profile.slots()
        config = worker_config(profile, slots, len(gpu_devices), tasks=sum(1 for c in todo if c.run))
        config.hidden, config.require_isolation = [str(workspace.root)], options.require_isolation
        pool = Pool(config, slots, gpu_devices)
        pool.launch()  # the worker imports torch while the snippet files are written
    try:
        _, changed = write_snippet_files(workspace.root, entries, rels, analysis_cache.written, workspace.knowledge_prefix)
        analysis_cache.dirty = analysis_cache.dirty or changed
    except BaseException:
        if pool is not None:
            pool.close()
        raise
    if todo:
        tasks = {f"t{n}": (task_for(c, n, profile, options.gpu), c) for n, c in enumerate(todo)}

        def on_result(task: SandboxTask, result: dict, wall: float) -> None:
            nonlocal done
            chain = tasks[task.id][1]
            apply_result(chain, redact_tree(result, secrets), wall, profile, env)
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
        analysis_cache.prune(set(snippets), {e.snippet.hash for e in entries})
    cache.save()
    analysis_cache.save()

    environment = {**env.as_dict(), **gpu_record(env)}
    rows = [entry_json(e, environment.get("fingerprint", ""), workspace.knowledge_prefix) for e in entries]
    document = redact_tree(build_document(entries, environment, isolation, previous, set(rels), workspace.root, rows), secrets)
    if same_results(previous, document):
        document["generated"] = previous.get("generated") or document["generated"]
    else:
        write_results(workspace.root, document)
    return Outcome(
        document=document,
        entries=entries,
        this_run=rows,
        ran=sum(len(c.run) for c in todo),
        cached=sum(e.cached for e in entries),
        seconds=time.perf_counter() - started,
    )

