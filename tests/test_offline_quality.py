"""The offline engine's quality rules: failed examples are not quoted again, and sections the corpus
documents without saying their title word for word (an argument, an API named for the title) are found."""

from __future__ import annotations

import asyncio
import json

from kb.corpus.documents import CorpusDoc
from kb.engine.offline.failures import KnownFailures, fence_hash
from kb.engine.offline.research import LocalResearcher
from kb.engine.offline.snippets import interactive_call, make_snippet
from kb.engine.offline.writer import ExtractiveWriter
from kb.engine.types import WriteRequest
from kb.plan import parse_plan
from kb.snippets.extract import extract_snippets
from kb.workspace import init_workspace
from offline_fixtures import demo_index, demo_plan

BROKEN = "import demo.metrics as metrics\nmetrics.configure(metrics.ConsoleMetricsHandler(), \"activation checkpointing\")"
METRICS = CorpusDoc(kind="doc", locator="demo.checkpoint.checkpoint_metrics", title="demo.checkpoint.checkpoint_metrics",
                    source="demo 1.0", keywords="demo.checkpoint.checkpoint_metrics",
                    text="Activation checkpointing metrics: how much memory checkpointing saved.",
                    examples=[BROKEN, "import demo.metrics as metrics\nmetrics.put_metric('activation checkpointing', 1)"])


def _write(researcher, part, index):
    research = asyncio.run(researcher.research(part, []))
    writer = ExtractiveWriter(None, corpus="demo", today="2025-01-01",
                              resolve=lambda path: "." in path and bool(index.named(path)))
    request = WriteRequest(plan_title="T", topic="T", plan_path="plans/training.md", part=part, context=[],
                           research=research)
    return research, asyncio.run(writer.write(request))


def test_fence_hash_is_the_hash_validate_snippets_records():
    snippet = make_snippet("x = 1\n\n\n\ny = 2", "demo.mod.f")
    body = f"# T\n\n```{snippet.info}\n{snippet.code}\n```\n"
    assert fence_hash(snippet.info, snippet.code) == extract_snippets("k.md", body)[0].hash
    assert "\n\n\n" not in snippet.code  # laid out as the writer lays files out, so the hashes agree


def test_an_example_that_failed_validation_is_left_out_on_a_rerun(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    index = demo_index([METRICS])
    part = demo_plan().part(1)
    # First run: both examples are quoted.
    _research, draft = _write(LocalResearcher(ws, index=index), part, index)
    assert "ConsoleMetricsHandler" in draft.body
    snippet = next(s for s in extract_snippets("k.md", draft.body) if "ConsoleMetricsHandler" in s.code)
    # kb validate-snippets recorded it as failing.
    results = {"version": 1, "snippets": [
        {"hash": snippet.hash, "status": "fail", "file": "knowledge/x.md", "line": snippet.line,
         "reason": "AttributeError: module 'demo.metrics' has no attribute 'ConsoleMetricsHandler'\nmore"},
        {"hash": "0" * 20, "status": "pass", "reason": None}]}
    (ws.root / "snippets").mkdir(exist_ok=True)
    (ws.root / "snippets" / "results.json").write_text(json.dumps(results))
    research, draft = _write(LocalResearcher(ws, index=index), part, index)
    assert "ConsoleMetricsHandler" not in draft.body
    assert "put_metric" in draft.body  # the other example of the same doc stays
    left_out = [w for w in draft.warnings if "left out" in w]
    assert left_out and "failed validation: AttributeError: module 'demo.metrics'" in left_out[0]
    assert "metrics.configure(metrics.ConsoleMetricsHandler()" in left_out[0] and "more" not in left_out[0]
    # Remembered in snippets/failed-examples.json: a later validation no longer lists it, and it stays out.
    (ws.root / "snippets" / "results.json").write_text(json.dumps({"version": 1, "snippets": []}))
    assert snippet.hash in KnownFailures.load(ws).by_hash
    assert snippet.hash in json.loads((ws.root / "snippets" / "failed-examples.json").read_text())
    _research, draft = _write(LocalResearcher(ws, index=index), part, index)
    assert "ConsoleMetricsHandler" not in draft.body


def test_interactive_examples_are_skipped_with_a_reason():
    code = "def f(x):\n    import pdb\n    pdb.set_trace()\n    return x\nf(1)"
    assert interactive_call(code) == "pdb.set_trace() starts the pdb debugger"
    snippet = make_snippet(code, "torch.jit.ignore")
    assert snippet.info == 'python kb:skip="interactive: pdb.set_trace() starts the pdb debugger, so it is read, not run"'
    assert interactive_call("x = input_size + 1") is None


PLAN = """\
# Knowledge Expansion: Speed (1 runner in 1 batch)

# BATCH 1: Speed (1 runner)

## PART 1: Optimizer Speed (~100 lines)

- [ ] PART 1: Create speed/00-optimizers.md

**Step 1: Web Research**
- [ ] Search: "fast optimizer step"
- [ ] Search: "GPU kernel time"

**Step 2: Create Knowledge File**
- [ ] Section 1: Fused optimizers (FusedAdam)
- [ ] Section 2: Multi-tensor optimizers (foreach=True)
- [ ] Section 3: GPU utilization (nvidia-smi)
- [ ] Section 4: Gradient accumulation (micro batches)
"""

SPEED_DOCS = [
    CorpusDoc(kind="doc", locator="demo.optim.Fast", title="demo.optim.Fast", source="demo 1.0", keywords="demo.optim.Fast",
              text="Implements a fast optimizer step.\n\n- `lr` (float): learning rate.\n\n"
                   "- `foreach` (bool): whether the foreach implementation of the optimizer is used.\n\n"
                   "- `fused` (bool): whether the fused implementation is used (default: None)."),
    CorpusDoc(kind="doc", locator="demo.gpu.utilization", title="demo.gpu.utilization", source="demo 1.0",
              keywords="demo.gpu.utilization",
              text="Return the percent of time during which a kernel was executing on the GPU, as nvidia-smi "
                   "reports its utilization."),
    CorpusDoc(kind="doc", locator="demo.optim.Adagrad", title="demo.optim.Adagrad", source="demo 1.0",
              keywords="demo.optim.Adagrad",
              text="Implements the Adagrad optimizer step, which adapts to each gradient.\n\nSee the paper for details.\n\n- `initial_accumulator_value` "
                   "(float): initial value of the sum of squares of the gradients (default: 0)."),
]


def test_arguments_and_named_apis_cover_sections_without_the_title_phrase():
    index = demo_index(SPEED_DOCS)
    part = parse_plan(PLAN, "plans/speed.md").part(1)
    research = asyncio.run(LocalResearcher(index=index).research(part, []))
    found = {n: [p.locator for p in ps] for n, ps in research.by_section.items()}
    assert found[1] == ["demo.optim.Fast"]  # its `fused` argument is what "Fused optimizers" means
    assert found[2] == ["demo.optim.Fast"]  # the plan writes the argument out: foreach=True
    assert found[3] == ["demo.gpu.utilization"]  # the API is named for the title's subject
    # "gradient" and an accumulator argument in one doc are not gradient accumulation.
    assert found[4] == []
