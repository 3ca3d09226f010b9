"""`--ray ADDRESS`: the same sandbox tasks on a Ray cluster, ``num_gpus`` from each snippet's requirements.

ray is an optional dependency (``pip install -c constraints.txt -e '.[ray]' in a checkout``). ADDRESS is a cluster address
(``ray://host:10001`` or ``host:6379``), ``auto`` (the cluster this machine belongs to), or ``local``
(start a local instance: handy for trying it out, and what the tests use).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from kb.errors import KbError
from kb.snippets.environment import Environment, probe_environment
from kb.snippets.profiles import Profile
from kb.snippets.sandbox.pool import ResultCallback, SandboxTask, require_complete

SANDBOX = Path(__file__).parent / "sandbox"


def _ray():
    try:
        import ray
    except ImportError:
        raise KbError("--ray needs the ray package: pip install -c constraints.txt -e '.[ray]' (in kb's checkout)") from None
    return ray


class RayBackend:
    """Connects on creation; ``run`` submits every task and collects results as they finish."""

    def __init__(self, address: str, profile: Profile) -> None:
        self.ray = _ray()
        self.address = address
        self.profile = profile
        self.started_here = False
        self.hidden = [str(Path.cwd())]  # never shown to snippets (validate sets the workspace)
        if not self.ray.is_initialized():
            try:
                if address == "local":
                    self.ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
                else:
                    self.ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as exc:  # noqa: BLE001 - ray raises many kinds; all mean "cannot connect"
                raise KbError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from None
            self.started_here = True
        from kb.snippets import ray_task

        # Ship the task function by value: the cluster needs ray and Python, not kb.
        self.ray.cloudpickle.register_pickle_by_value(ray_task)
        self.remote = self.ray.remote(ray_task.run_task)
        self.sources = {name: (SANDBOX / name).read_text(encoding="utf-8") for name in ("worker.py", "child.py", "confine.py")}

    def cluster_gpus(self) -> tuple[int, list[str]]:
        resources = self.ray.cluster_resources()
        kinds = sorted(k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:"))
        return int(resources.get("GPU", 0)), kinds

    def environment(self, modules: list[str]) -> Environment:
        """The local probe (cluster nodes are assumed to match it) with the cluster's GPUs."""
        env = probe_environment(self.profile, modules)
        count, kinds = self.cluster_gpus()
        name = ", ".join(kinds) or "GPU"
        env.gpus = [{"name": name, "driver": None, "memory_mb": None} for _ in range(count)]
        if count and env.cuda is None:
            env.cuda = "cluster"  # the nodes' torch, not ours, runs CUDA snippets
        env.backend = f"ray:{self.address}"
        return env

    def run(self, tasks: list[SandboxTask], on_result: ResultCallback, require_isolation: bool = False) -> dict:
        """Submit all tasks; returns the isolation the cluster's workers reported. Each node's sandbox
        worker confines itself as a local one does; with ``require_isolation`` a worker that cannot
        runs no snippet, and kb stops with the reason."""
        config = {
            **self.profile.sandbox_settings(),
            "hidden": self.hidden,
            "require_isolation": require_isolation,
            "preimport": list(self.profile.preimport),
            "slots": 1,
            "threads": self.profile.threads(),
            "memory_limit_mb": self.profile.memory_limit_mb,
            "max_processes": self.profile.max_processes,
            "max_file_mb": self.profile.max_file_mb,
            "sandbox_uid": self.profile.sandbox_uid,
            "tail_chars": self.profile.tail_chars,
        }
        config_json = json.dumps(config, sort_keys=True)
        pending = {}
        for task in tasks:
            task.submitted = time.perf_counter()
            ref = self.remote.options(num_gpus=task.gpus, num_cpus=1).remote(task.message, config_json, self.sources, None)
            pending[ref] = task
        isolation: dict = {}
        nodes: set[str] = set()
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    reply = self.ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a task that died on the cluster is reported, not fatal
                    facts = [{"index": i, "outcome": "setup-error", "message": f"Ray task failed: {exc}"} for i in range(len(task.message["snippets"]))]
                    on_result(task, {"op": "result", "task": task.id, "snippets": facts}, time.perf_counter() - task.submitted)
                    continue
                isolation = isolation or dict(reply.get("ready", {}).get("isolation", {}))
                node_isolation = reply.get("ready", {}).get("isolation", {})
                if require_isolation and not node_isolation.get("complete"):
                    for ref in pending:
                        self.ray.cancel(ref, force=True)
                    require_complete({**node_isolation, "missing": [f"{m} on node {reply.get('node', '?')}" for m in node_isolation.get("missing", ["unknown"])]}, True)
                nodes.add(reply.get("node", "?"))
                on_result(task, reply["result"], time.perf_counter() - task.submitted)
        if isolation:
            isolation["backend"] = f"ray ({self.address}; nodes: {', '.join(sorted(nodes))})"
        return isolation

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()
