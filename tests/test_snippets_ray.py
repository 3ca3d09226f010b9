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
    sandboxes = set(Path(tempfile.gettempdir()).glob("kb-ray-sandbox-*"))
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
    # Neither the sandbox's copy of its sources is left behind, nor any scratch: the confined worker
    # keeps each snippet's scratch on a tmpfs of its own (kb-sandbox-* folders of other programs
    # running on this machine may come and go meanwhile).
    assert set(Path(tempfile.gettempdir()).glob("kb-ray-sandbox-*")) == sandboxes
    assert outcome.document["isolation"]["filesystem"].startswith("mount namespace")


HOSTILE = """```python
import os
print('KEY', os.environ.get('KB_RAY_TEST_API_KEY', '')[::-1])
for path in ('/etc/shadow', {ws!r} + '/kb.toml'):
    try:
        open(path, 'a').write('owned')
        print('WROTE', path)
    except OSError as exc:
        print('blocked', exc.errno)
open('/tmp/{mark}', 'w').write('x')
print(os.getppid(), sorted(os.listdir('/proc'))[:1], os.getcwd())
```
"""


@pytest.mark.slow
def test_ray_runs_snippets_in_the_same_sandbox(tmp_path, monkeypatch):
    """Issue 24 on the Ray backend: each node's worker confines itself as a local one does."""
    import uuid

    from test_snippets_hostile import kernel_allows_namespaces

    if not kernel_allows_namespaces():
        pytest.skip("this kernel or container allows no namespaces here")

    mark = "kbray" + uuid.uuid4().hex[:8]
    key = "sk-ray-" + uuid.uuid4().hex
    monkeypatch.setenv("KB_RAY_TEST_API_KEY", key)  # ray.init below hands kb's environment to its workers
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "validators" / "cpu.toml").write_text("timeout_s = 30\nmemory_limit_mb = 1024\nmax_processes = 64\n")
    (workspace.root / "knowledge" / "h.md").write_text(HOSTILE.format(ws=str(workspace.root), mark=mark))
    toml = (workspace.root / "kb.toml").read_bytes()
    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        outcome = run_validation(workspace, Options(ray="local", require_isolation=True))
    finally:
        ray.shutdown()
    (row,) = outcome.rows
    iso = outcome.document["isolation"]
    assert iso["complete"] is True and iso["filesystem"].startswith("mount namespace"), iso
    assert row["status"] == "pass", row["stderr_tail"]
    assert row["stdout_tail"].startswith("KEY \nblocked ") and "WROTE" not in row["stdout_tail"]
    assert row["stdout_tail"].endswith(" /tmp/snippet\n") and row["stdout_tail"].splitlines()[-1].startswith("0 ")
    assert (workspace.root / "kb.toml").read_bytes() == toml
    assert not Path("/tmp", mark).exists()
    assert key[::-1] not in (workspace.root / "snippets" / "results.json").read_text()
