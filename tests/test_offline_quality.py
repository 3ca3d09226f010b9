"""The offline engine's quality rules: examples that fail are left out, examples that use names defined
elsewhere get a visible setup when an honest one exists, no excerpt is in two files of a batch, the digest's
citations resolve, and sections the corpus documents without saying their title word for word are found."""

from __future__ import annotations

import asyncio
import re

import pytest

from kb.corpus.documents import CorpusDoc
from kb.corpus.tokenize import terms
from kb.engine.check import check_draft
from kb.engine.offline.digest import answers, excerpt_blocks, keyword_only, purpose, read_excerpt, sentences, statements
from kb.engine.offline.gate import SnippetGate, fence_hash
from kb.engine.offline.owners import Elsewhere, QuotedIn, QuoteOwners, normalize
from kb.engine.offline.research import LocalResearcher
from kb.engine.offline.setup import SETUP_MARK
from kb.engine.offline.snippets import interactive_call, make_snippet, runnable_snippet
from kb.engine.offline import writer as writer_module
from kb.engine.offline.writer import ExtractiveWriter
from kb.engine.types import Passage, Research, SourceRef, WriteRequest
from kb.plan import parse_plan
from kb.records import KnowledgeMeta, write_knowledge
from kb.report.collect import collect_report
from kb.snippets.extract import extract_snippets
from kb.workspace import init_workspace
from offline_fixtures import demo_index

EXAMPLES_PLAN = """\
# Knowledge Expansion: Tuning (2 runners in 1 batch)

# BATCH 1: Tuning (2 runners)

## PART 1: Learning Rate Tuning (~100 lines)

- [ ] PART 1: Create tuning/00-schedules.md

**Step 2: Create Knowledge File**
- [ ] Section 1: Learning rate schedules (warmup, decay)
- [ ] Section 2: Schedule metrics (logging the learning rate)

## PART 2: Schedules Revisited (~100 lines)

- [ ] PART 2: Create tuning/01-revisited.md

**Step 2: Create Knowledge File**
- [ ] Section 1: Learning rate schedules (warmup, decay)
"""

# A broken example (the docs' own code fails), a working one, and one that needs a training loop it does not show.
BROKEN = "# learning rate schedule metrics\nrates = torch.ones(2)\nrates.view(3)"
WORKS = "# learning rate schedule metrics\nrates = torch.linspace(0.1, 0.01, 5)\nprint(rates.mean())"
NEEDS_SETUP = ("# xdoctest: +SKIP\n# learning rate schedule: warmup then decay\n"
               "scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=2)\n"
               "for epoch in range(3):\n    optimizer.zero_grad()\n    loss_fn(model(input), target).backward()\n"
               "    optimizer.step()\n    scheduler.step()")
TUNING_DOCS = [
    CorpusDoc(kind="doc", locator="demo.sched.WarmupDecay", title="demo.sched.WarmupDecay", source="demo 1.0",
              keywords="demo.sched.WarmupDecay",
              text="`WarmupDecay(optimizer, warmup=100)`\n\nA learning rate schedule with warmup, then decay.\n\n"
                   "Warmup is useful when large learning rates make early training diverge; decay should follow it.",
              examples=[NEEDS_SETUP]),
    CorpusDoc(kind="doc", locator="demo.sched.log_rates", title="demo.sched.log_rates", source="demo 1.0",
              keywords="demo.sched.log_rates",
              text="`log_rates(schedule)`\n\nSchedule metrics: log the learning rate of every step.\n\n"
                   "Logging the learning rate is the cheapest way to see a schedule misbehave.",
              examples=[BROKEN, WORKS]),
]


@pytest.fixture
def tuning(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    (ws.plans_dir / "tuning.md").write_text(EXAMPLES_PLAN, encoding="utf-8")
    index = demo_index(TUNING_DOCS)
    researcher = LocalResearcher(ws, index=index)
    return ws, index, researcher, parse_plan(EXAMPLES_PLAN, "plans/tuning.md")


def _writer(ws, index, researcher, gate=None):
    return ExtractiveWriter(None, corpus="demo 1.0 docstrings", today="2025-01-01", gate=gate,
                            resolve=lambda path: "." in path and bool(index.named(path)),
                            owners=QuoteOwners(ws, researcher.research_part))


def _draft(researcher, writer, part):
    research = asyncio.run(researcher.research(part, []))
    request = WriteRequest(plan_title="Tuning", topic="Tuning", plan_path="plans/tuning.md", part=part, context=[],
                           research=research)
    return request, asyncio.run(writer.write(request))


def test_failing_examples_are_left_out_and_setups_shown_after_a_run_in_the_sandbox(tuning):
    ws, index, researcher, plan = tuning
    gate = SnippetGate(ws.validators_dir, state_dir=ws.state_dir)
    try:
        request, draft = _draft(researcher, _writer(ws, index, researcher, gate), plan.part(1))
        body = draft.body
        assert check_draft(draft, request) == []
        # The docs' own broken code is left out, and the drop's warnings say why.
        assert "rates.view(3)" not in body
        left_out = [w for w in draft.warnings if "left out" in w]
        assert len(left_out) == 1 and "demo.sched.log_rates" in left_out[0]
        assert "it failed in kb's sandbox: RuntimeError" in left_out[0]
        # The example that needs a training loop gets one, in the code a reader sees, and it ran.
        fences = {s.code: s for s in extract_snippets("k.md", body)}
        with_setup = next(code for code in fences if "LinearLR" in code)
        assert f"{SETUP_MARK} (not in the demo.sched.WarmupDecay docs)" in with_setup
        assert "model = nn.Linear(8, 4)" in with_setup and "optimizer = torch.optim.SGD(model.parameters()" in with_setup
        assert with_setup.index(SETUP_MARK) < with_setup.index("# The example, from the demo.sched.WarmupDecay docs:")
        assert "kb added the setup at its top, marked in the code, so that it runs" in body
        assert fences[with_setup].info == "python"  # the docs' +SKIP dropped: kb ran it
        assert "print(rates.mean())" in body and fences[next(c for c in fences if "rates.mean" in c)].info == "python"
        # What the file shows, validation passes: a fresh run never writes a failing snippet.
        shown = [(s.info, s.code.removesuffix("\n")) for s in fences.values()]  # as written between the fences
        fresh = SnippetGate(ws.validators_dir)
        try:
            assert [v.status for v in fresh.verdicts(shown)] == ["pass", "pass"]
        finally:
            fresh.close()
        # The verdicts went into kb validate-snippets' result cache: a later run (or validation) runs nothing again.
        later = SnippetGate(ws.validators_dir, state_dir=ws.state_dir)
        assert [v.status for v in later.verdicts(shown)] == ["pass", "pass"]
        assert not later.worker_started
    finally:
        gate.close()


def test_runnable_form_adds_an_honest_setup_or_none():
    sgd = ("# xdoctest: +SKIP\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
           "optimizer.zero_grad()\nloss_fn(model(input), target).backward()\noptimizer.step()")
    runnable = runnable_snippet(sgd, "torch.optim.SGD")
    assert runnable.info == "python" and runnable.doc_skip
    assert runnable.setup == ["model", "loss_fn", "input", "target"]  # `input` is the docs' data, not the builtin
    assert runnable.code.startswith("# Imports added by kb (not in the docs):\nimport torch\nimport torch.nn as nn\n\n"
                                    "# Setup added by kb")
    # The form shown when kb did not run it: as the docs give it, skipped with their reason.
    assert make_snippet(sgd, "torch.optim.SGD").info == 'python kb:skip="marked skip in the torch.optim.SGD docs"'
    assert runnable_snippet("out = helper(model)", "pkg.mod.f") is None  # `helper` has no honest stand-in
    # It makes its own model but takes the optimizer from elsewhere: ours would optimize the wrong parameters.
    assert runnable_snippet("model = nn.Linear(2, 2)\noptimizer.step()", "pkg.mod.f") is None
    assert runnable_snippet("import pdb\npdb.set_trace()", "pkg.mod.f") is None
    # A standard-library module the docs assume is imported, in both forms.
    assert make_snippet("print(math.ceil(2.5))", "pkg.mod.f").code == (
        "# Imports added by kb (not in the docs):\nimport math\n\nprint(math.ceil(2.5))")


def test_a_module_alias_the_docs_assume_is_imported_as_the_module_not_a_function_of_its_name():
    # torch.distributed's examples say ``dist.GradBucket``: torch.dist (the p-norm) is not it.
    hook = "def noop(state, bucket: dist.GradBucket):\n    return bucket\nprint(noop)"
    documented = {"torch.dist", "torch.distributed.GradBucket"}
    code = make_snippet(hook, "torch.distributed.algorithms.ddp_comm_hooks.default_hooks.noop", documented.__contains__).code
    assert "import torch.distributed as dist" in code and "from torch import dist" not in code
    # A lowercase name read as a module (``ops.run``) is not resolved to a function of that name an outer module documents.
    code = make_snippet("ops.run(1)", "pkg.sub.f", {"pkg.ops"}.__contains__)
    assert "from pkg import ops" not in code.code and "ops" in code.info  # left a name defined elsewhere
    # A class the example's own module documents still is (CheckpointPolicy.MUST_SAVE).
    code = make_snippet("print(Policy.MUST_SAVE)", "pkg.sub.f", {"pkg.sub.Policy"}.__contains__).code
    assert "from pkg.sub import Policy" in code


def test_no_excerpt_or_example_in_two_files_of_one_batch_whatever_order_they_finish(tuning):
    ws, index, researcher, plan = tuning
    writer = _writer(ws, index, researcher)
    # PART 2 is written first (PARTs of a batch run side by side): it still defers to PART 1, which comes first.
    _req2, second = _draft(researcher, writer, plan.part(2))
    _req1, first = _draft(researcher, writer, plan.part(1))
    assert "| `demo.sched.WarmupDecay` |" in first.body and "| `demo.sched.WarmupDecay` |" not in second.body
    # The link points at the section of PART 1 that quotes it.
    assert ("`demo.sched.WarmupDecay` is quoted in [Learning Rate Tuning, Section 1: Learning rate schedules]"
            "(00-schedules.md#section-1-learning-rate-schedules) [1].") in second.body
    both = first.body + second.body
    for words in ("Warmup is useful when large learning rates make early training diverge",
                  "A learning rate schedule with warmup, then decay.", "LinearLR(optimizer"):
        assert both.count(words) == 1, words
    assert {s.locator for s in second.sources} == {"knowledge/tuning/00-schedules.md#section-1-learning-rate-schedules"}
    # Its header does not call the section it only links documented here, nor the report a quote of its own.
    assert "0 of 1 planned sections quoted and cited from 0 local sources; 1 points to the section that quotes its answer." in second.body
    part = plan.part(2)
    write_knowledge(ws.knowledge_dir / part.target, KnowledgeMeta(title=part.title, plan="plans/tuning.md", batch=1,
                                                                  part=2, engine="offline", sources=second.sources), second.body)
    entry = next(f for f in collect_report(ws).files if f.file == f"knowledge/{part.target}")
    assert (entry.sections_cited, entry.sections_linked) == (1, 1)
    # The same PART written again is the same file: the order of a run changes nothing.
    assert _draft(researcher, _writer(ws, index, researcher), plan.part(2))[1].body == second.body


def test_the_digest_citations_resolve_in_kb_report(tuning):
    ws, index, researcher, plan = tuning
    part = plan.part(1)
    _request, draft = _draft(researcher, _writer(ws, index, researcher), part)
    rows = [line for line in draft.body.splitlines() if line.startswith("| `demo.")]
    uses = [line for line in draft.body.splitlines() if line.startswith("- `demo.")]
    assert len(rows) == 2 and len(uses) == 2 and all(line.rstrip(" |").endswith("]") for line in rows)
    write_knowledge(ws.knowledge_dir / part.target,
                    KnowledgeMeta(title=part.title, plan="plans/tuning.md", batch=1, part=1, engine="offline",
                                  sources=draft.sources), draft.body)
    entry = next(f for f in collect_report(ws).files if f.file == f"knowledge/{part.target}")
    assert entry.citations_unresolved == 0
    assert entry.citations >= len(rows) + len(uses)  # every row and every bullet cites
    assert entry.sections_cited == 2


def test_the_digest_reads_a_docstring_into_purpose_and_when_to_use_it():
    text = ("`Stream(device=None, priority=0)`\n\nWrapper around a CUDA stream. A stream runs kernels in order, e.g. "
            "one after another. See `cuda-semantics` for details.\n\n"
            "The learning rate is updated recursively using:\n\n"
            "- `priority` (int, optional): priority of the stream. A lower number is useful when a copy should "
            "overtake compute.\n\n- `\\eta_t` (float): is the rate at step t, not an argument.\n\n"
            "**Returns:** Stream: the stream, for use in a with statement.")
    excerpt = read_excerpt(text)
    assert excerpt.signature == "Stream(device=None, priority=0)"
    assert purpose(excerpt.summary) == "Wrapper around a CUDA stream."
    assert sentences(excerpt.summary)[1] == "A stream runs kernels in order, e.g. one after another."
    # A numbered paragraph's number is no sentence of its own: a bullet that quotes the paragraph leaves no "2." behind.
    assert sentences("2. Fault tolerance: monitors workers. It restarts them.") == [
        "Fault tolerance: monitors workers.", "It restarts them."]
    said = statements(excerpt, {"stream", "prioriti"})
    # The usage sentence of the argument item after the one that says what the argument is, and the summary's
    # second sentence; not the formula's lead-in, the symbol that is no argument, or what it returns.
    assert [(s.argument, s.text) for s in said] == [
        (None, "A stream runs kernels in order, e.g. one after another."),
        ("priority", "priority of the stream."),
        ("priority", "A lower number is useful when a copy should overtake compute.")]
    # The excerpt after the bullets: the blocks they did not quote from (the summary's first sentence is the
    # table's purpose, its last a pointer to a page this file cannot show); not the lead-in whose next block
    # (`priority`, quoted above) does not follow it.
    blocks = excerpt_blocks(excerpt, {x.text for x in said}, keep_summary=False)
    assert blocks[0].startswith("- `\\eta_t`") and len(blocks) == 2
    assert not any(b.startswith("The learning rate is updated") for b in blocks)
    assert not any("priority" in b or "cuda-semantics" in b or "Wrapper around" in b for b in blocks)
    # A paragraph a bullet took a sentence from keeps the rest, "[…]" where that sentence stood.
    paragraph = read_excerpt("`f()`\n\nDo f.\n\nFirst it warms up. Then it is useful for speed. Last it stops.")
    assert excerpt_blocks(paragraph, {"Then it is useful for speed."}, keep_summary=False) == [
        "First it warms up. […] Last it stops."]
    # A lead-in whose list is not quoted after it ("... per chunk. Caveats:" then an argument) loses its last words.
    caveats = read_excerpt("`g()`\n\nDo g.\n\nChunked training is the motivating case. Caveats:\n\n"
                           "- Each call registers its own node.\n\n- `mesh` (DeviceMesh): the mesh to shard on.")
    assert excerpt_blocks(caveats, {"Each call registers its own node."}, keep_summary=False) == [
        "Chunked training is the motivating case.", "- `mesh` (DeviceMesh): the mesh to shard on."]
    # A plain "Note: " label is markup, as "**Note:**" is: not the bullet's first word, and the quote below
    # does not say again, label and all, the sentence the bullet took.
    noted = read_excerpt("`clip(max_norm)`\n\nClip the gradients.\n\nNote: The scale is clamped to 1.0 to prevent "
                         "gradient amplification. So gradients are only scaled down.")
    said = statements(noted, {"gradient", "scale", "clamp"})
    assert said[0].text == "The scale is clamped to 1.0 to prevent gradient amplification."
    assert not any("clamped" in b for b in excerpt_blocks(noted, {x.text for x in said}, keep_summary=False))
    # A block that introduces the code the excerpt left out ("... a drop-in replacement for `AdamW`:") reads broken
    # alone: not quoted; one that introduces the list after it is.
    lead_ins = read_excerpt("`h()`\n\nDo h.\n\nIt may be used as a drop-in replacement for `AdamW`:\n\n"
                            "With Amp, choose any `opt_level`:\n\nExample use cases:\n\n- Response latency")
    assert excerpt_blocks(lead_ins, set(), keep_summary=False) == ["Example use cases:", "- Response latency"]


def test_fence_hash_is_the_hash_validate_snippets_records():
    snippet = make_snippet("x = 1\n\n\n\ny = 2", "demo.mod.f")
    body = f"# T\n\n```{snippet.info}\n{snippet.code}\n```\n"
    assert fence_hash(snippet.info, snippet.code) == extract_snippets("k.md", body)[0].hash
    assert "\n\n\n" not in snippet.code  # laid out as the writer lays files out, so the hashes agree


def test_interactive_examples_are_skipped_with_a_reason():
    code = "def f(x):\n    import pdb\n    pdb.set_trace()\n    return x\nf(1)"
    assert interactive_call(code) == "pdb.set_trace() starts the pdb debugger"
    snippet = make_snippet(code, "torch.jit.ignore")
    assert snippet.info == 'python kb:skip="interactive: pdb.set_trace() starts the pdb debugger, so it is read, not run"'
    assert interactive_call("x = input_size + 1") is None


def test_an_example_reaching_into_another_modules_internals_is_not_picked():
    from kb.engine.offline.excerpts import pick_examples

    internals = "with torch.cpu.amp.autocast():\n    torch._C._jit_set_autocast_mode(False)\n    y = model(x)"
    plain = "with torch.autocast(device_type='cpu'):\n    y = model(x)"
    doc = CorpusDoc(kind="doc", locator="torch.autocast", title="torch.autocast", source="torch", keywords="",
                    text="Autocast runs regions in mixed precision.", examples=[internals, plain])
    weights = {"autocast": 1.0, "amp": 1.0}
    # The one saying "amp" besides "autocast" would rank first: it teaches a private switch, so it is not picked.
    assert pick_examples(doc, weights, lambda t: 1.0) == [plain]
    own = CorpusDoc(kind="doc", locator="torch._logging.set_logs", title="set_logs", source="torch", keywords="",
                    text="Sets the log level.", examples=["torch._logging.set_logs(dynamo=10)"])
    assert pick_examples(own, {"log": 1.0, "set_logs": 1.0}, lambda t: 1.0)  # its own private module is its API


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


def test_a_caution_is_no_purpose_and_a_sentence_leaning_on_another_is_never_quoted_alone():
    # The table's purpose skips a caution or a lead-in ("Warning: ...", "... passed to:"), and the excerpt keeps it.
    hook = read_excerpt("`hook(state, bucket)`\n\nWarning: This API is experimental. This hook compresses gradients "
                        "to half precision before the allreduce.")
    assert purpose(hook.summary) == "This hook compresses gradients to half precision before the allreduce."
    assert excerpt_blocks(hook, set(), keep_summary=False) == ["Warning: This API is experimental."]
    assert purpose(read_excerpt("`f()`\n\nReturn valid strings that can be passed to:").summary) is None
    # "This behavior ..." is said with the sentence it refers to; a paragraph opening "In these cases" is left out.
    opt = read_excerpt("`Opt(params, foreach=None)`\n\nAn optimizer.\n\n"
                       "By default the for-loop implementation is used for speed. This behavior is contrary to other "
                       "optimizers, which use foreach when on CUDA for speed.\n\n"
                       "In these cases, you should use foreach for speed instead.")
    said = statements(opt, {"foreach", "speed"}, limit=3)
    texts = [s.text for s in said]
    assert any(t.startswith("By default the for-loop") and "This behavior is contrary" in t for t in texts)
    assert not any(t.startswith(("This behavior", "In these cases")) for t in texts)
    # A conclusion ("Therefore, ...") is said with its premise, or not at all where another section quoted that.
    scale = read_excerpt("`Scaler()`\n\nScales the loss.\n\nA large scale factor avoids underflow. Therefore, the "
                         "best scale factor is the largest one that causes no overflow.")
    assert [s.text for s in statements(scale, {"scale", "factor", "overflow"})] == [
        "A large scale factor avoids underflow. Therefore, the best scale factor is the largest one that causes no "
        "overflow."]
    assert statements(scale, {"scale", "factor", "overflow"}, used={"A large scale factor avoids underflow."}) == []
    # Under "Optimizer CPU overhead" in a PART on optimizers, a sentence that says only "optimizer" is the PART's, not
    # the section's: the kernel-launch sentence is quoted, the one about Amp is not.
    fused = read_excerpt("`FusedAdam(params)`\n\nImplements Adam.\n\nThe update is batched into one or a few kernel "
                         "launches. `apex.optimizers.FusedAdam` may be used with or without Amp.")
    wanted = set(terms("Optimizer CPU overhead parameter flattening, reducing kernel launches"))
    topic = set(terms("Optimizer Optimization"))
    assert [s.text for s in statements(fused, wanted, topic=topic)] == [
        "The update is batched into one or a few kernel launches."]
    assert len(statements(fused, wanted)) == 2


SCALED = ("# xdoctest: +SKIP\n# learning rate schedule: warmup then decay, on a scaled loss\nscaler = torch.GradScaler()\nfor epoch in epochs:\n    for input, target in data:\n"
          "        optimizer.zero_grad()\n        loss = loss_fn(model(input), target)\n"
          "        scaler.scale(loss).backward()\n        scaler.step(optimizer)\n        scaler.update()")


def test_an_example_that_ran_only_with_cuda_turned_off_is_shown_with_its_setup_as_needing_cuda(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("on a CUDA machine the example runs: this is what a machine without CUDA writes")
    # GradScaler() on a machine without CUDA warns and does nothing: the run "passed" and showed nothing. Its setup
    # ran to the end, so the honest form is the runnable one, marked as needing CUDA, not "uses names defined elsewhere".
    ws, _ = init_workspace(tmp_path / "ws")
    docs = [CorpusDoc(kind="doc", locator="demo.amp.Scaler", title="demo.amp.Scaler", source="demo 1.0",
                      keywords="demo.amp.Scaler", text="`Scaler()`\n\nA learning rate schedule with warmup, then decay.",
                      examples=[SCALED])]
    index = demo_index(docs)
    researcher = LocalResearcher(ws, index=index)
    plan = parse_plan(EXAMPLES_PLAN, "plans/tuning.md")
    gate = SnippetGate(ws.validators_dir, state_dir=ws.state_dir)
    try:
        _request, draft = _draft(researcher, _writer(ws, index, researcher, gate), plan.part(1))
    finally:
        gate.close()
    fences = [s for s in extract_snippets("k.md", draft.body) if "GradScaler" in s.code]
    assert len(fences) == 1
    shown = fences[0]
    assert "kb:requires=cuda" in shown.info and "kb:skip" not in shown.info
    # ... with kb's stand-ins made on the GPU, so that a GPU run scales a CUDA loss (not a CPU one with CUDA present).
    assert SETUP_MARK in shown.code and 'model = nn.Linear(8, 4, device="cuda")' in shown.code
    assert 'torch.randn(16, 8, device="cuda")' in shown.code and "random data on cuda" in shown.code
    assert "it needs a CUDA device" in draft.body and "defined elsewhere" not in draft.body
    fresh = SnippetGate(ws.validators_dir)
    try:
        verdict = fresh.verdicts([(shown.info, shown.code.removesuffix("\n"))])[0]
    finally:
        fresh.close()
    assert verdict.status == "skip" and "cuda" in (verdict.reason or "")
# -- the digest as a reader meets it (issue 19, item 3): passages written so that an engineer learns from them --

DIGEST_PLAN = """\
# Knowledge Expansion: Digest (1 runner in 1 batch)

# BATCH 1: Digest (1 runner)

## PART 1: Training Speed (~100 lines)

- [ ] PART 1: Create speed/00-training.md

**Step 2: Create Knowledge File**
- [ ] Section 1: Fused optimizers (FusedAdam, apex.optimizers)
- [ ] Section 2: Profiling memory (memory timeline)
- [ ] Section 3: DataLoader tuning (num_workers, pin_memory, prefetch_factor)
- [ ] Section 4: Loss scaling (GradScaler)
- [ ] Section 5: Optimizer defaults (Adam)
"""

_LOADER_SIG = ("DataLoader(dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0, "
               "collate_fn=None, drop_last=False, timeout=0, worker_init_fn=None, multiprocessing_context=None, "
               "generator=None, *, pin_memory=False, prefetch_factor=None, persistent_workers=False, in_order=True)")
DIGEST_DOCS = {
    "demo.optim.AdamW": (
        "`AdamW(params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False, *, maximize=False, "
        "foreach=None, capturable=False, differentiable=False, fused=None)`\n\n"
        "Implements AdamW algorithm, where weight decay does not accumulate in the momentum nor variance.\n\n"
        "- `lr` (float, optional): learning rate (default: 1e-3)\n\n"
        "- `differentiable` (bool, optional): whether autograd should occur through the optimizer step in training. "
        "Setting to True can impair performance, so leave it False if you don't intend to run autograd through this "
        "instance (default: False)\n\n"
        "- `fused` (bool, optional): whether the fused implementation is used. Currently, `torch.float64`, "
        "`torch.float32`, `torch.float16`, and `torch.bfloat16` are supported. (default: None)\n\n"
        "**Note:** The foreach and fused implementations are typically faster than the for-loop, single-tensor "
        "implementation, with fused being theoretically fastest with both vertical and horizontal fusion."),
    "demo.profiler.export_memory_timeline": (
        "`export_memory_timeline(self, path, device=None)`\n\n"
        "Export memory event information from the profiler collected tree for a given device, and export a "
        "timeline plot. There are 3 exportable files using `export_memory_timeline`, each controlled by the "
        "`path`'s suffix.\n\n"
        "- For an HTML compatible plot, use the suffix `.html`, and a memory timeline plot will be embedded as a PNG "
        "file in the HTML file, which is useful for profiling memory.\n\n"
        "**Deprecated:** `export_memory_timeline` is deprecated and will be removed in a future version. Please use "
        "`demo.memory.record_history` and `demo.memory.export_snapshot` instead."),
    "demo.data.DataLoader": (
        f"`{_LOADER_SIG}`\n\n"
        "Data loader combines a dataset and a sampler, and provides an iterable over the given dataset.\n\n"
        "- `num_workers` (int, optional): how many subprocesses to use for data loading. `0` means that the data "
        "will be loaded in the main process. (default: `0`)\n\n"
        "- `pin_memory` (bool, optional): If `True`, the data loader will copy Tensors into device/CUDA pinned "
        "memory before returning them. If your data elements are a custom type, see the example below.\n\n"
        "- `prefetch_factor` (int, optional, keyword-only arg): Number of batches loaded in advance by each worker. "
        "`2` means there will be a total of 2 * num_workers batches prefetched across all workers.\n\n"
        "**Note:** See `multiprocessing-best-practices` for more details related to multiprocessing in PyTorch."),
    "demo.amp.GradScaler": (
        "`GradScaler(device='cuda', init_scale=65536.0, growth_factor=2.0, enabled=True)`\n\n"
        "An instance `scaler` of `GradScaler`.\n\n"
        "Helps perform the steps of gradient scaling conveniently.\n\n"
        "* `scaler.scale(loss)` multiplies a given loss by `scaler`'s current scale factor.\n\n"
        "`scaler` dynamically estimates the scale factor each iteration. To minimize gradient underflow, a large "
        "scale factor should be used."),
    "demo.optim.Adam": (
        "`Adam(params, lr=0.001)`\n\n"
        "Implements Adam algorithm, and its fused and foreach variants, and much more besides: the first sentence "
        "of this summary runs on and on about what it does, naming every variant, every argument and every "
        "paper it comes from, and every release that changed it, with every caveat that each release added, so "
        "that no table cell could show it whole without cutting it mid-way through its words. Adam is the usual default optimizer."),
}


def _digest_body(sections: dict[int, list[str]]) -> str:
    """The offline writer's file for DIGEST_PLAN, each section given the passages named (full docstrings)."""
    from kb.engine.types import Passage, Research
    from kb.records import SourceRef

    part = parse_plan(DIGEST_PLAN, "plans/digest.md").part(1)
    locators = list(dict.fromkeys(x for names in sections.values() for x in names))
    sources = [SourceRef(id=n, title=f"{x}, demo 1.0 docstring", kind="doc", locator=x)
               for n, x in enumerate(locators, 1)]
    by_section = {s.number: [Passage(kind="doc", locator=x, title=x, text=DIGEST_DOCS[x])
                             for x in sections.get(s.number, [])] for s in part.sections}
    request = WriteRequest(plan_title="Digest", topic="Digest", plan_path="plans/digest.md", part=part, context=[],
                           research=Research(by_section=by_section, sources=sources))
    draft = ExtractiveWriter(None, corpus="demo 1.0 docstrings", today="2025-01-01").write_sync(request)
    assert check_draft(draft, request) == []
    return draft.body


def _digest_section(body: str, number: int) -> str:
    return body.split(f"## Section {number}:")[1].split("\n## ")[0]


def _row(section: str, locator: str) -> list[str]:
    line = next(ln for ln in section.splitlines() if ln.startswith(f"| `{locator}` |"))
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_the_purpose_is_the_sentence_that_says_what_the_api_does_never_a_fragment():
    # "An instance `scaler` of `GradScaler`." names a variable and teaches nothing: the next sentence is the purpose.
    scaler = read_excerpt(DIGEST_DOCS["demo.amp.GradScaler"])
    assert purpose(scaler.summary) == "Helps perform the steps of gradient scaling conveniently."
    body = _digest_body({4: ["demo.amp.GradScaler"], 5: ["demo.optim.Adam"]})
    hooks = read_excerpt("`hook(state, bucket)`\n\nCompress by casting to bfloat16. It allreduces those `bfloat16` "
                         "gradient tensors, which is useful to reduce communication.")
    assert statements(hooks, {"compress", "communic"}) == []  # "those" tensors are in the table's sentence
    assert _row(_digest_section(body, 4), "demo.amp.GradScaler")[2] == (
        "Helps perform the steps of gradient scaling conveniently.")
    # A bullet that says `scaler` is said with the sentence that says what `scaler` is.
    assert "An instance `scaler` of `GradScaler`." in _digest_section(body, 4).split("| API |")[0]
    # A first sentence too long for a cell is not cut mid-way: the next whole sentence that fits says it.
    assert _row(_digest_section(body, 5), "demo.optim.Adam")[2] == "Adam is the usual default optimizer."
    assert "…" not in "".join(ln for ln in body.splitlines() if ln.startswith("| `"))
    # Nor a sentence that leans on one the cell cannot show.
    hook = read_excerpt("`hook(state, bucket)`\n\nWarning: This API is experimental. " + "This hook compresses " + "gradients and " * 30 + "buckets. "
                        + "It allreduces those `bfloat16` gradient tensors.")
    assert purpose(hook.summary) is None


def test_a_cell_without_a_purpose_says_so():
    from kb.engine.offline.digest import NO_PURPOSE

    DIGEST_DOCS["demo.x.passed_to"] = ('`passed_to()`\n\nReturn valid strings that can be passed to:\n\n'
                                       'demo.compile(..., backend="name")\n\n- `a`: one.')
    try:
        body = _digest_body({5: ["demo.x.passed_to"]})
    finally:
        del DIGEST_DOCS["demo.x.passed_to"]
    assert _row(_digest_section(body, 5), "demo.x.passed_to")[2] == NO_PURPOSE


def test_a_deprecated_api_is_said_deprecated_with_its_replacement_never_recommended():
    body = _digest_body({2: ["demo.profiler.export_memory_timeline"]})
    section = _digest_section(body, 2)
    uses = section.split("**What to use and when**")[1].split("| API |")[0].strip().splitlines()
    # One line: it is deprecated, in the docstring's words, naming what replaces it; no usage advice for it.
    assert uses == ["- `demo.profiler.export_memory_timeline` [1] is deprecated: `export_memory_timeline` is "
                    "deprecated and will be removed in a future version. Please use `demo.memory.record_history` "
                    "and `demo.memory.export_snapshot` instead."]
    assert _row(section, "demo.profiler.export_memory_timeline")[2].startswith("**Deprecated.** Export memory")
    assert "useful for profiling memory" not in section


def test_a_long_signature_keeps_the_arguments_the_section_is_about():
    body = _digest_body({3: ["demo.data.DataLoader"]})
    signature = _row(_digest_section(body, 3), "demo.data.DataLoader")[1]
    assert signature.startswith("`DataLoader(dataset, batch_size=1,") and signature.endswith(", …)`")
    for argument in ("num_workers=0", "pin_memory=False", "prefetch_factor=None"):
        assert argument in signature
    assert "in_order" not in signature and len(signature) < 200
    # A comma inside a default is no argument boundary: a tuple is never cut open.
    from kb.engine.offline.digest import short_signature
    short = short_signature("f(a, betas=(0.9, 0.999), " + ", ".join(f"arg{n}={n}" for n in range(40)) + ")")
    assert "betas=(0.9, 0.999)" in short and short.endswith(", …)") and short.count("(") == short.count(")")


def test_an_argument_that_answers_the_section_is_quoted_and_each_argument_says_what_it_is_first():
    body = _digest_body({1: ["demo.optim.AdamW"], 3: ["demo.data.DataLoader"]})
    fused = _digest_section(body, 1)
    assert ("- `demo.optim.AdamW`, argument `fused` [1]: whether the fused implementation is used.") in fused
    assert "`differentiable`" not in fused.split("| API |")[0]  # an argument of another topic is no answer
    loader = _digest_section(body, 3).split("| API |")[0]
    for argument in ("num_workers", "pin_memory", "prefetch_factor"):
        assert f"argument `{argument}`" in loader
    # "`2` means ..." has no subject without the item's first sentence: it is said after it.
    assert ("argument `prefetch_factor` [2]: Number of batches loaded in advance by each worker. `2` means there "
            "will be a total of 2 * num_workers batches prefetched across all workers.") in loader


def test_the_excerpt_keeps_an_argument_block_that_answers_the_section():
    from kb.engine.offline.excerpts import excerpt

    doc = CorpusDoc(kind="doc", locator="demo.optim.AdamW", title="demo.optim.AdamW", source="demo 1.0",
                    keywords="demo.optim.AdamW", text=DIGEST_DOCS["demo.optim.AdamW"])
    weights = {"fuse": 1.0, "optim": 0.6, "adam": 0.3}
    text, _best = excerpt(doc, weights, lambda t: 1.0, max_blocks=2)
    assert "- `fused` (bool, optional)" in text


def test_the_overview_is_about_its_topic_and_the_how_to_read_note_is_said_once_in_the_footer():
    body = _digest_body({1: ["demo.optim.AdamW"]})
    overview = body.split("## Overview")[1].split("\n## ")[0]
    assert "offline engine" not in overview and "adds no claims" not in overview
    footer = body.rstrip().splitlines()[-1]
    assert footer.startswith("*Written by kb's offline engine") and "own words" in footer


def test_pointers_fragments_and_repeated_rows_are_not_written():
    body = _digest_body({1: ["demo.optim.AdamW"], 3: ["demo.data.DataLoader"], 5: ["demo.optim.AdamW"]})
    # "See `x` for more details" is a pointer to a page this file cannot show, not an excerpt.
    assert "multiprocessing-best-practices" not in body and "see the example below" not in body
    # Where an argument answers the section, the excerpt quotes no other argument.
    modes = read_excerpt("`compile(mode=None, disable=False)`\n\nOptimize a function.\n\n- `mode` (str): the mode.\n\n"
                         "- `disable` (bool): Turn compile() into a no-op for testing.\n\nModes trade compile time for speed.")
    assert excerpt_blocks(modes, set(), keep_summary=False, wanted={"compil", "mode"}) == [
        "- `mode` (str): the mode.", "Modes trade compile time for speed."]
    # Nor is the pointer left over from a paragraph a bullet took sentences of.
    stream = read_excerpt("`Stream()`\n\nWrapper around a stream.\n\nA stream is a linear sequence of execution. "
                          "It runs kernels in order. See `cuda-semantics` for details.")
    assert excerpt_blocks(stream, {"A stream is a linear sequence of execution."}, keep_summary=False) == [
        "It runs kernels in order."]
    # The row of an API tabled in an earlier section of the file is not repeated; where the earlier section quoted
    # the argument that answers this one, the pointer says which.
    assert body.count("| `demo.optim.AdamW` |") == 1
    from kb.engine.offline.digest import answered_above
    adamw = read_excerpt(DIGEST_DOCS["demo.optim.AdamW"])
    assert answered_above(adamw, {"fuse", "optim"}, {"whether the fused implementation is used."}) == ["fused"]
    assert answered_above(adamw, {"fuse", "optim"}, set()) == []


def test_a_flattened_list_is_quoted_as_the_source_has_it_and_its_entries_are_no_sentences():
    backend = read_excerpt('`compile(backend=None)`\n\nOptimize a function.\n\n- `backend` (str): backend to be used - '
                           '"inductor" is the default backend, which is a good balance between performance and overhead '
                           '- Non experimental in-tree backends can be seen with `list_backends()`\n\n'
                           '- `skip_actions` (list): actions to skip when compiling a backend. Valid actions are: '
                           '- `"oom"`: Out-of-memory events of the backend compile step\n\n'
                           'torch.compile(..., backend="name")')
    said = statements(backend, {"backend", "compil"}, limit=4)
    from kb.engine.offline.digest import joined
    text = joined([s for s in said if s.argument == "backend"])
    # The list's " - " between two entries stays: "... overhead Non experimental ..." read as one garbled sentence.
    assert text == ('backend to be used - "inductor" is the default backend, which is a good balance between '
                    'performance and overhead - Non experimental in-tree backends can be seen with `list_backends()`')
    assert not any(s.text.startswith('`"oom"`') or s.text.startswith("torch.compile(") for s in said)


def test_a_sentence_an_earlier_file_quotes_makes_a_block_that_repeats_it_said_already():
    warning = ("Given the way that overlapping DDP with the optimizer is implemented, the first two or three "
               "training iterations do not perform parameter updates in the optimizer step.")
    earlier = Elsewhere(texts=[(normalize(f"If you pass `overlap=True`, be wary of this: {warning}"), "k/04.md", "Memory")])
    # Another docstring's block leads the same sentence with its own label: it is a repeat all the same.
    assert earlier.quoting(f"**Warning:** {warning} Plan for it.") == ("k/04.md", "Memory")
    assert earlier.quoting("A block that says something else entirely, at some length, about buckets.") is None


def test_the_setup_optimizer_has_the_learning_rate_the_example_says_it_assumes():
    example = ("# Assuming optimizer uses lr = 0.05 for all groups\n"
               "scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=4)\n"
               "for epoch in range(2):\n    train()\n    scheduler.step()")
    runnable = runnable_snippet(example, "torch.optim.lr_scheduler.LinearLR")
    assert "optimizer = torch.optim.SGD(model.parameters(), lr=0.05)" in runnable.code
    plain = runnable_snippet("optimizer.step()", "torch.optim.SGD")
    assert "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)" in plain.code


def test_an_argument_the_api_ignores_is_neither_said_nor_quoted():
    text = ("`Adam8(params, optim_bits=32, amsgrad=False, min_8bit_size=4096)`\n\n8-bit Adam optimizer.\n\n"
            "- `optim_bits` (int): The number of bits of the optimizer state. Note: This parameter is not used in "
            "Adam8 as it always uses 8-bit optimization.\n\n"
            "- `amsgrad` (bool): Whether to use AMSGrad. Note: This parameter is not supported in Adam8 and must be False.\n\n"
            "- `min_8bit_size` (int): The minimum number of elements of the parameter tensors for 8-bit optimization.")
    wanted = set(terms("8-bit optimizers (bitsandbytes, memory savings)"))
    said = [s.argument for s in statements(read_excerpt(text), wanted)]
    assert "optim_bits" not in said and "amsgrad" not in said and "min_8bit_size" in said
    assert not any("not used" in b or "not supported" in b for b in excerpt_blocks(read_excerpt(text), set(), False, wanted))


def test_an_argument_saying_of_the_section_only_what_its_module_says_is_neither_said_nor_quoted():
    # Under "8-bit optimizers": an 8-bit Adagrad's `eps` "prevents division by zero in the optimizer" says "optimizer"
    # because bitsandbytes.optim holds it, not because it is about 8-bit optimizers; the argument named for the
    # section stays, and so does a sentence saying a section word its module does not (autocast's `dtype`).
    text = ("`Adagrad8bit(params, eps=1e-10, is_paged=False, min_8bit_size=4096)`\n\n8-bit Adagrad optimizer.\n\n"
            "- `eps` (float): The epsilon value prevents division by zero in the optimizer.\n\n"
            "- `is_paged` (bool): Whether the optimizer is a paged optimizer or not.\n\n"
            "- `min_8bit_size` (int): The minimum number of elements of the parameter tensors for 8-bit optimization.")
    wanted = set(terms("8-bit optimizers (bitsandbytes, memory savings)"))
    own = set(terms("bitsandbytes optim"))
    said = [s.argument for s in statements(read_excerpt(text), wanted, own=own)]
    assert said == ["min_8bit_size"]
    assert "eps" in [s.argument for s in statements(read_excerpt(text), wanted)]  # without its module: said
    quoted = excerpt_blocks(read_excerpt(text), set(), False, wanted, own)
    assert not any("epsilon" in b or "paged" in b for b in quoted)
    autocast = "`autocast(device_type, dtype=None)`\n\nInstances of autocast serve as context managers.\n\n" \
               "- `dtype` (torch.dtype): Data type for ops run in autocast."
    amp = set(terms("PyTorch AMP (autocast, GradScaler, loss scaling)"))
    assert "dtype" in [s.argument for s in statements(read_excerpt(autocast), amp, own=set(terms("torch")))]


def test_the_argument_a_section_is_about_is_read_from_its_name():
    persistent = set(terms("Persistent workers (worker process reuse, reduced startup overhead)"))
    assert answers("persistent_workers", persistent) and not answers("num_workers", persistent)
    timing = set(terms("CUDA event recording (timing GPU operations)"))
    assert answers("enable_timing", timing) and not answers("external", timing)
    assert answers("pin_memory", set(terms("Data loading overlap (prefetching, pin_memory)")))


def test_the_note_on_imports_kb_added_never_covers_the_docs_own():
    code = make_snippet("import functools\nf = functools.partial(torch.ones, 2)", "torch.ones").code
    assert code == "# Imports added by kb (not in the docs):\nimport torch\n\nimport functools\nf = functools.partial(torch.ones, 2)"


def test_an_argument_an_earlier_section_quoted_of_a_passage_another_file_owns_is_pointed_to():
    loader = "demo.data.Loader"
    text = ("`Loader(dataset, num_workers=0, prefetch_factor=None)`\n\nLoads batches of a dataset.\n\n"
            "- `num_workers` (int): how many subprocesses to use for data loading.\n\n"
            "- `prefetch_factor` (int): Number of batches loaded in advance by each worker.")
    owner = QuotedIn("knowledge/perf/00-gpu.md", "GPU", 5, "Data loading overlap", "pin_memory")

    class Owners:  # another file quotes the loader first
        def elsewhere(self, plan_path, part):
            return Elsewhere(locators={loader: (owner.where, owner.file_title)}, sections={loader: owner})

    part = parse_plan("# P\n\n## PART 2: Data loading\n\n- [ ] PART 2: Create perf/01-data.md\n\n"
                      "- [ ] Section 1: Loader optimization (num_workers, prefetch_factor)\n"
                      "- [ ] Section 2: Prefetching strategies (prefetch_factor=2)\n").part(2)
    passage = Passage(kind="doc", locator=loader, title=loader, text=text)
    research = Research(by_section={1: [passage], 2: [passage]},
                        sources=[SourceRef(id=1, title=loader, kind="doc", locator=loader)])
    writer = ExtractiveWriter(None, corpus="demo", today="2025-01-01", owners=Owners())
    body = asyncio.run(writer.write(WriteRequest(plan_title="P", topic="P", plan_path="plans/p.md", part=part,
                                                 context=[], research=research))).body
    second = body.split("## Section 2")[1].split("## ")[0]
    assert "argument `prefetch_factor` [1]: Number of batches" in body.split("## Section 2")[0]  # said in Section 1
    assert "Also relevant, and quoted above: `demo.data.Loader` [1], argument `prefetch_factor` (Section 1)." in second
    assert "- `demo.data.Loader` is quoted in [GPU, Section 5: Data loading overlap]" in second
    # Where its arguments are quoted here, the pointer says the rest of it is there.
    assert "- More of `demo.data.Loader` is quoted in [GPU, Section 5" in body.split("## Section 2")[0]


def test_a_deprecation_a_library_warns_when_kb_runs_the_example_is_said_beside_it(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    # Python hides a DeprecationWarning raised inside a library (torch.jit.trace's); kb's sandbox shows it.
    code = ("import types\nlib = types.ModuleType('lib')\n"
            "exec(\"import warnings\\ndef old():\\n    warnings.warn('old() is deprecated. Use new()', DeprecationWarning)\\n"
            "    return 1\", lib.__dict__)\nprint(lib.old())")
    gate = SnippetGate(ws.validators_dir)
    try:
        verdict = gate.verdicts([("python", code)])[0]
    finally:
        gate.close()
    assert verdict.status == "pass" and verdict.deprecated == "old() is deprecated. Use new()"
    ran = runnable_snippet("print(1)", "lib.old")
    example = writer_module._Example(Passage(kind="doc", locator="lib.old", title="lib.old", text=""), "print(1)",
                                     make_snippet("print(1)", "lib.old"), runnable=ran)
    ExtractiveWriter(None, resolve=None)._decide(example, verdict)
    assert ExtractiveWriter._example_lead(example) == 'when kb ran it, it warned: "old() is deprecated. Use new()"'


def test_an_argument_is_named_as_the_signature_spells_it_whatever_its_item_says():
    # torch.cuda.StreamContext documents its `stream` parameter as "Stream (Stream): selected stream."; the quote
    # stays verbatim, kb's own label names the parameter a reader passes.
    text = "`StreamContext(stream)`\n\nContext-manager that selects a given stream.\n\n- `Stream` (Stream): selected stream."
    passage = Passage(kind="doc", locator="demo.cuda.StreamContext", title="demo.cuda.StreamContext", text=text)
    said = statements(read_excerpt(text), {"stream", "select"})
    bullets = ExtractiveWriter(None)._uses(passage, SourceRef(4, "demo", "doc", "demo.cuda.StreamContext"), said, None)
    assert "- " + bullets[-1] == "- `demo.cuda.StreamContext`, argument `stream` [4]: selected stream."


def _gated_draft(tmp_path, docs: list, plan: str = EXAMPLES_PLAN):
    """PART 1 of ``plan`` written over ``docs``, its examples run in kb's sandbox."""
    ws, _ = init_workspace(tmp_path / "ws")
    index = demo_index(docs)
    researcher = LocalResearcher(ws, index=index)
    gate = SnippetGate(ws.validators_dir, state_dir=ws.state_dir)
    try:
        return _draft(researcher, _writer(ws, index, researcher, gate), parse_plan(plan, "plans/tuning.md").part(1))[1]
    finally:
        gate.close()


def test_an_api_whose_example_warns_it_is_deprecated_is_marked_so_in_the_table(tmp_path):
    # torch.jit.trace's docstring says nothing of it, but running its example prints "`torch.jit.trace` is
    # deprecated": the table row says so, as the line above the example does.
    warns = "import warnings\nwarnings.warn('`demo.sched.Warmup` is deprecated. Use demo.sched.Linear', DeprecationWarning)\nprint(2)"
    draft = _gated_draft(tmp_path, [CorpusDoc(
        kind="doc", locator="demo.sched.Warmup", title="demo.sched.Warmup", source="demo 1.0", keywords="demo.sched.Warmup",
        text="`Warmup(steps)`\n\nA learning rate schedule with warmup, then decay.", examples=[warns])])
    row = next(line for line in draft.body.splitlines() if line.startswith("| `demo.sched.Warmup`"))
    assert "**Deprecated** (it warns when run). A learning rate schedule with warmup, then decay." in row
    assert 'when kb ran it, it warned: "`demo.sched.Warmup` is deprecated. Use demo.sched.Linear"' in draft.body


def test_an_api_another_sections_example_warns_is_deprecated_is_marked_so_in_its_own_row(tmp_path):
    # torch.jit.save's example calls torch.jit.script, which warns it is deprecated: torch.jit.script's row in
    # another section of the file says so too, though its own docstring and example say nothing.
    warns = ("import warnings\nwarmup = 2  # steps of warmup, then decay\nwarnings.warn('`demo.sched.log_lr` is "
             "deprecated. Use demo.sched.record', DeprecationWarning)\nprint(warmup)")
    docs = [CorpusDoc(kind="doc", locator="demo.sched.Warmup", title="demo.sched.Warmup", source="demo 1.0",
                      keywords="demo.sched.Warmup", text="`Warmup(steps)`\n\nA learning rate schedule with warmup, then decay.",
                      examples=[warns]),
            CorpusDoc(kind="doc", locator="demo.sched.log_lr", title="demo.sched.log_lr", source="demo 1.0",
                      keywords="demo.sched.log_lr", text="`log_lr(schedule)`\n\nLog the learning rate of a schedule as a "
                                                         "metric, for schedule metrics dashboards.")]
    draft = _gated_draft(tmp_path, docs)
    rows = {line.split("|")[1].strip(): line for line in draft.body.splitlines() if line.startswith("| `demo.sched.")}
    assert "**Deprecated** (it warns when run). Log the learning rate" in rows["`demo.sched.log_lr`"]
    assert "Deprecated" not in rows["`demo.sched.Warmup`"]


FUSED_PLAN = """\
# Knowledge Expansion: Optimizers (1 runner in 1 batch)

# BATCH 1: Optimizers (1 runner)

## PART 1: Optimizer Speed (~100 lines)

- [ ] PART 1: Create opt/00-speed.md

**Step 2: Create Knowledge File**
- [ ] Section 1: Fused optimizers (fused kernels)
"""


@pytest.mark.parametrize("example, shown", [
    ("opt = demo.optim.Fast([1.0], lr=0.1)  # optimizer kernels\nprint(opt)", False),
    ("opt = demo.optim.Fast([1.0], lr=0.1, fused=True)\nprint(opt)", True),
])
def test_under_a_title_naming_a_keyword_only_argument_an_example_that_does_not_pass_it_is_not_shown(tmp_path, example, shown):
    # torch.optim.SGD's example (momentum, no fused=) is no example of "Fused optimizers".
    ws, _ = init_workspace(tmp_path / "ws")
    doc = CorpusDoc(kind="doc", locator="demo.optim.Fast", title="demo.optim.Fast", source="demo 1.0",
                    keywords="demo.optim.Fast fused optimizer",
                    text="`Fast(params, lr=0.01, *, foreach=None, fused=None)`\n\nA fast optimizer.\n\n"
                         "- `fused` (bool, optional): whether the fused implementation of the optimizer is used.",
                    examples=[example])
    index = demo_index([doc])
    researcher = LocalResearcher(ws, index=index)
    _request, draft = _draft(researcher, _writer(ws, index, researcher), parse_plan(FUSED_PLAN, "plans/opt.md").part(1))
    assert "argument `fused`" in draft.body
    assert ("```python" in draft.body) is shown
    assert keyword_only("Fast(params, lr=0.01, *, foreach=None, fused=None)") == ["foreach", "fused"]
    assert keyword_only("wait(stream=None)") == [] and keyword_only("f(*args, x=1)") == []
