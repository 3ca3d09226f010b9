"""--ray: the same tasks through a local Ray instance (skipped where ray is not installed)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'kb-compiler[ray]')")

from kb.snippets.validate import Options, run_validation  # noqa: E402
from kb.workspace import init_workspace  # noqa: E402

DOC = """```python
import torch
print(torch.ones(2).sum().item())
```

```python
import sys
sys.exit(4)
```

```python
import torch
torch.cuda.synchronize()
```

```python
state = 7
```

```python kb:continue
print(state * 6)
```
"""


@pytest.mark.slow
def test_ray_local_cluster_runs_the_same_tasks(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "validators" / "cpu.toml").write_text("timeout_s = 30\nmemory_limit_mb = 1024\nmax_processes = 64\n")
    (workspace.root / "knowledge" / "r.md").write_text(DOC)
    sandboxes = set(Path(tempfile.gettempdir()).glob("kb-*sandbox-*"))
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        outcome = run_validation(workspace, Options(ray="local"))
    finally:
        ray.shutdown()
    rows = {r["line"]: r for r in outcome.rows}
    assert (rows[1]["status"], rows[1]["stdout_tail"]) == ("pass", "2.0\n")
    assert (rows[6]["status"], rows[6]["reason"]) == ("fail", "exited with status 4")
    assert (rows[11]["status"], rows[11]["reason"]) == ("skip", "requires cuda")  # the cluster has no GPU
    assert (rows[16]["status"], rows[20]["stdout_tail"]) == ("pass", "42\n")
    assert outcome.document["isolation"]["backend"].startswith("ray (local")
    assert outcome.document["environment"]["backend"] == "ray:local"
    # Neither the sandbox's copy of worker.py and child.py nor its scratch folder is left behind.
    assert set(Path(tempfile.gettempdir()).glob("kb-*sandbox-*")) == sandboxes
