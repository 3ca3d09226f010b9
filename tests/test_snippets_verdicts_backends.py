"""The Ray backend's path carries the verdicts unchanged: its task function (ray_task.run_task, the
code a Ray worker runs) driven here without a cluster, results back through the same callback."""

from __future__ import annotations

import json
import time

import pytest

from kb.snippets import ray_backend, ray_task
from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace

DOC = """```python
import torch
print(torch.ones(2).sum().item())
```

```python
def helper(x):
    return x + 1
```

```python
from math import *
print(sqrt(4), undefined_thing)
```

```python
from torch.utils.tensorboard import SummaryWriter
```

```python
raise ValueError("broken")
```
"""


class LocalRay(ray_backend.RayBackend):
    """RayBackend without ray: each task goes to ray_task.run_task in this process, one after another."""

    def __init__(self, address, profile):  # noqa: D107 - no cluster to connect to
        self.address, self.profile, self.started_here = address, profile, False
        self.sources = {name: (ray_backend.SANDBOX / name).read_text(encoding="utf-8") for name in ("worker.py", "child.py", "confine.py")}

    def cluster_gpus(self):
        return 0, []

    def run(self, tasks, on_result, require_isolation=False):
        config = json.dumps({"preimport": ["torch"], "slots": 1, "threads": 1, "memory_limit_mb": 4096,
                             "max_processes": 128, "max_file_mb": 64, "tail_chars": 2000}, sort_keys=True)
        isolation = {}
        for task in tasks:
            started = time.perf_counter()
            reply = ray_task.run_task(task.message, config, self.sources, [])
            isolation = isolation or dict(reply["ready"].get("isolation", {}))
            on_result(task, reply["result"], time.perf_counter() - started)
        return isolation

    def close(self):
        import sys

        for state in getattr(sys.modules.get("_kb_ray_sandbox"), "workers", {}).values():
            state["proc"].stdin.close()
            state["proc"].wait(30)


@pytest.fixture
def local_ray(monkeypatch):
    monkeypatch.setattr(ray_backend, "RayBackend", LocalRay)
    yield
    import sys

    sys.modules.pop("_kb_ray_sandbox", None)


def test_the_ray_path_gives_the_same_verdicts(tmp_path, local_ray):
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "validators" / "cpu.toml").write_text("timeout_s = 60\nmemory_limit_mb = 4096\nmax_processes = 128\n")
    (workspace.knowledge_dir / "r.md").write_text(DOC)
    outcome = run_validation(workspace, Options(ray="local"))
    rows = {r["line"]: (r["status"], r["reason"]) for r in outcome.rows}
    assert rows[1] == ("pass", None)
    assert rows[6] == ("defines-only", "defines helper; nothing calls them")
    assert rows[11][0] == "fragment" and rows[11][1].startswith("uses undefined_thing defined elsewhere (NameError")
    assert rows[16] == ("skip", "requires module tensorboard (not installed; an optional dependency of a package it uses)")
    assert rows[20] == ("fail", "ValueError: broken")
    assert outcome.document["environment"]["backend"] == "ray:local"
