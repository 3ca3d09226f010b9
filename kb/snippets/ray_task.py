"""The function a Ray worker runs for one snippet task (standard library only, shipped by value).

The cluster needs Python, ray and the snippets' own packages (torch), not kb: the sandbox's two
files travel with the task, and each Ray worker process keeps one warm sandbox worker for its
life, so `import torch` is paid once per Ray worker, not per snippet.
"""

from __future__ import annotations


def run_task(task: dict, config_json: str, sources: dict, gpu_ids: list | None = None) -> dict:
    """Run ``task`` in this Ray worker's warm sandbox; return the worker's result plus where it ran."""
    import json
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import tempfile
    import types

    # One warm worker per Ray worker process, kept across tasks. A module object in sys.modules is
    # the only state that survives between calls of a function shipped by value.
    holder = sys.modules.get("_kb_ray_sandbox")
    if holder is None:
        holder = types.ModuleType("_kb_ray_sandbox")
        holder.workers = {}
        sys.modules["_kb_ray_sandbox"] = holder
    state = holder.workers.get(config_json)
    if state is None or state["proc"].poll() is not None:
        folder = tempfile.mkdtemp(prefix="kb-ray-sandbox-")
        for name, text in sources.items():
            with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        config = json.loads(config_json)
        # The node's environment, allow-listed as on a local run: never the keys of the Ray worker.
        confine = types.ModuleType("_kb_sandbox_confine")
        exec(compile(sources["confine.py"], "confine.py", "exec"), confine.__dict__)
        env = confine.clean_environment(dict(os.environ), config.get("pass_env") or [])
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(config.get("threads", 1))
        proc = subprocess.Popen(
            [sys.executable, "-u", os.path.join(folder, "worker.py"), config_json],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/", start_new_session=True,
        )
        try:
            ready = json.loads(proc.stdout.readline() or b"{}")
        finally:
            # worker.py has loaded child.py and confine.py by the time it says ready; nothing reads the
            # folder again, and a Ray worker may be killed without running any cleanup.
            shutil.rmtree(folder, ignore_errors=True)
        state = {"proc": proc, "ready": ready}
        holder.workers[config_json] = state
    proc = state["proc"]
    if gpu_ids is None:
        import ray  # present: we run inside a Ray worker

        gpu_ids = list(ray.get_gpu_ids())
    ids = gpu_ids
    task = dict(task)
    task["env"] = {**(task.get("env") or {}), "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in ids)}
    proc.stdin.write((json.dumps({"op": "run", "task": task}) + "\n").encode())
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        if not line:
            facts = [{"index": i, "outcome": "setup-error", "message": "the sandbox worker on the Ray node died"} for i in range(len(task["snippets"]))]
            result = {"op": "result", "task": task["id"], "snippets": facts}
            break
        result = json.loads(line)
        if result.get("op") == "result" and result.get("task") == task["id"]:
            break
    return {"result": result, "ready": state["ready"], "node": socket.gethostname(), "gpu_ids": ids}
