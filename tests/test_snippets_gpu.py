"""GPU runs (--gpu): marked `gpu`, skipped with a reason where torch sees no CUDA device."""

from __future__ import annotations

import json

import pytest

from kb.engine.offline.snippets import runnable_snippet
from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch.cuda.is_available() is False"),
]

DOC = """```python
import os, torch
x = torch.ones(1024, device="cuda")
torch.cuda.synchronize()
print(os.environ["CUDA_VISIBLE_DEVICES"], torch.cuda.device_count(), x.sum().item())
```

```python
import os, torch
print(repr(os.environ["CUDA_VISIBLE_DEVICES"]), torch.ones(2).sum().item())
```

```python kb:requires=multi-gpu:64
print("too many")
```

```python
import torch
device = "cuda" if torch.cuda.is_available() else "cpu"
print(device)
```
"""


def test_gpu_run_gives_each_snippet_one_device(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "knowledge" / "g.md").write_text(DOC)
    outcome = run_validation(workspace, Options(gpu=True))
    # Rows are keyed by the 1-based line of each fence's opening, in DOC's order.
    fences = [n for n, line in enumerate(DOC.splitlines(), 1) if line.startswith("```python")]
    assert len(fences) == 4
    rows = {fences.index(r["line"]): r for r in outcome.rows}
    assert rows[0]["status"] == "pass", rows[0]["stderr_tail"]
    visible, count, total = rows[0]["stdout_tail"].split()
    assert visible.isdigit() and count == "1" and float(total) == 1024.0
    # A snippet that never names CUDA sees no device (one that does, even guarded, gets one: rows[3]).
    assert rows[1]["status"] == "pass" and rows[1]["stdout_tail"] == "'' 2.0\n"
    assert rows[2]["status"] == "skip" and rows[2]["reason"].startswith("requires 64 GPUs")
    assert rows[3]["stdout_tail"] == "cuda\n"  # guarded CUDA code gets a device on a GPU run
    env = json.loads((workspace.root / "snippets" / "results.json").read_text())["environment"]
    assert env["gpu"] and env["driver"] and env["cuda"] and env["torch"] and env["profile"] == "cuda"


SCALER_EXAMPLE = """scaler = torch.GradScaler()
for epoch in epochs:
    for input, target in data:
        optimizer.zero_grad()
        loss = loss_fn(model(input), target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()"""


def test_an_example_kb_marks_as_needing_cuda_runs_its_setup_on_the_gpu(tmp_path):
    # The offline writer's form for an example that runs on a CPU only with torch's CUDA feature off (GradScaler):
    # kb's stand-ins made on the GPU. On a GPU run the scaler is on and scales a CUDA loss.
    snippet = runnable_snippet(SCALER_EXAMPLE, "torch.GradScaler", device="cuda")
    assert snippet is not None and snippet.setup
    check = "\nassert next(model.parameters()).is_cuda and scaler.is_enabled() and scaler.get_scale() > 0\nprint('scaled on', loss.device)"
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "knowledge" / "s.md").write_text(f"```python kb:requires=cuda\n{snippet.code}{check}\n```\n")
    outcome = run_validation(workspace, Options(gpu=True))
    (row,) = outcome.rows
    assert row["status"] == "pass", row["stderr_tail"]
    assert row["stdout_tail"] == "scaled on cuda:0\n"
