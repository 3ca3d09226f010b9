"""kb's support check: sentences, citations, numbers, API names, and the lexical check measured on a labelled set."""

from __future__ import annotations

import pytest

from kb.llm.support import (api_names, citations, is_factual, judge, keep_supported, prose_sentences, review,
                             split_sentences)

# Passages in the shapes research retrieves (documentation prose, a blog's explanation, a docstring), written here.
CKPT = ("Gradient checkpointing, also called activation recomputation, trades compute for memory: instead of keeping "
        "every intermediate activation for the backward pass, it stores only a few and recomputes the rest. In PyTorch "
        "the entry point is torch.utils.checkpoint.checkpoint. Pass use_reentrant=False explicitly.")
COST = ("Checkpointing every layer cuts activation memory from linear in depth to roughly the square root of the depth, "
        "for about one extra forward pass of compute, typically 20 to 30 percent slower steps.")
LOADER = ("The DataLoader becomes the bottleneck when the GPU waits on the CPU. Raise num_workers until throughput stops "
          "improving, set pin_memory=True for faster host-to-device copies, and persistent_workers=True to avoid "
          "re-forking workers every epoch.")
AMP = ("Automatic mixed precision runs matrix multiplications in FP16 or BF16 while keeping master weights in FP32. "
       "torch.autocast picks the precision per op; GradScaler scales the loss so FP16 gradients do not underflow. "
       "BF16 has the FP32 exponent range and needs no loss scaling.")
ACCUM = ("Gradient accumulation simulates a large batch on limited memory: run several micro-batches, let gradients "
         "add up, and step the optimizer once every N micro-batches. Divide the loss by N.")
SNAP = ("torch.cuda.memory._record_memory_history() starts recording allocations with their stack traces; "
        "torch.cuda.memory._dump_snapshot('snap.pickle') writes them to a file that the memory viz page at "
        "pytorch.org/memory_viz renders.")
OPTIM = ("Adam keeps two moving averages per parameter; eps is added to the denominator to improve numerical "
         "stability and defaults to 1e-8.")

# (sentence, passage, label): S = the passage says what the sentence says; U = it does not (QUALITY.md; P counts as U).
LABELLED = [
    ("Gradient checkpointing trades compute for memory by recomputing activations in the backward pass [1].", CKPT, "S"),
    ("In PyTorch, `torch.utils.checkpoint.checkpoint` is the entry point for activation recomputation [1].", CKPT, "S"),
    ("Pass `use_reentrant=False` explicitly when calling the checkpoint function [1].", CKPT, "S"),
    ("Checkpointing every layer makes steps typically 20 to 30 percent slower [1].", COST, "S"),
    ("Checkpointing every layer reduces activation memory to roughly the square root of the depth [1].", COST, "S"),
    ("Raise `num_workers` until throughput stops improving [1].", LOADER, "S"),
    ("Setting `pin_memory=True` gives faster host-to-device copies [1].", LOADER, "S"),
    ("`persistent_workers=True` avoids re-forking the workers every epoch [1].", LOADER, "S"),
    ("BF16 has the FP32 exponent range, so it needs no loss scaling [1].", AMP, "S"),
    ("`GradScaler` scales the loss so that FP16 gradients do not underflow [1].", AMP, "S"),
    ("Mixed precision keeps the master weights in FP32 while matrix multiplications run in FP16 or BF16 [1].", AMP, "S"),
    ("With gradient accumulation the optimizer steps once every N micro-batches, and the loss is divided by N [1].", ACCUM, "S"),
    ("Accumulating gradients over micro-batches simulates a large batch on limited memory [1].", ACCUM, "S"),
    ("`torch.cuda.memory._record_memory_history()` records allocations together with their stack traces [1].", SNAP, "S"),
    ("The snapshot file written by `_dump_snapshot` can be rendered on the memory viz page [1].", SNAP, "S"),
    ("The DataLoader is the bottleneck when the GPU waits on the CPU [1].", LOADER, "S"),
    ("`torch.autocast` chooses the precision for each op [1].", AMP, "S"),
    ("Gradient checkpointing stores only a few intermediate activations and recomputes the others [1].", CKPT, "S"),
    # Paraphrases, as models write them.
    ("Checkpointing lowers memory use at the cost of extra compute [1].", CKPT, "S"),
    ("Enabling pinned memory speeds up copies from host to device [1].", LOADER, "S"),
    ("Mixed precision does matrix math in half precision but keeps FP32 master weights [1].", AMP, "S"),
    ("On small GPUs, accumulate gradients over several micro-batches before each optimizer step [1].", ACCUM, "S"),
    ("Recording the memory history captures a stack trace for each allocation [1].", SNAP, "S"),
    # Unsupported: a number the passage lacks, an API it never names, another topic sharing a word.
    ("Checkpointing every layer makes steps about 73 percent slower [1].", COST, "U"),
    ("Checkpointing cuts activation memory by 4x on a 48-layer model [1].", COST, "U"),
    ("Use `torch.utils.checkpoint.checkpoint_sequential` to checkpoint a whole nn.Sequential [1].", CKPT, "U"),
    ("Set `prefetch_factor=4` to load four batches ahead per worker [1].", LOADER, "U"),
    ("`torch.cuda.amp.custom_fwd` casts the inputs of custom autograd functions [1].", AMP, "U"),
    ("The optimizer's eps keeps loss scaling numerically stable in FP16 training [1].", OPTIM, "U"),
    ("Quantum annealing schedules improve the convergence of transformer embeddings [1].", CKPT, "U"),
    ("ZeRO-Offload keeps optimizer states in host memory when the GPU is small [1].", ACCUM, "U"),
    ("Data parallel training synchronises gradients with an all-reduce after each backward pass [1].", LOADER, "U"),
    ("FP8 training needs per-tensor scaling factors for every matrix multiplication [1].", AMP, "U"),
    ("Gradient accumulation lets the learning rate stay the same whatever the global batch size is [1].", ACCUM, "U"),
    ("The memory viz page shows per-kernel execution time for every CUDA stream [1].", SNAP, "U"),
    ("Pinned memory doubles the GPU's memory bandwidth for every kernel [1].", LOADER, "U"),
    ("BF16 needs loss scaling with a dynamic scaler to avoid overflow in the exponent [1].", AMP, "P"),
]


def measure(labelled=LABELLED, **kw):
    tp = fp = fn = tn = 0
    for sentence, passage, label in labelled:
        passed = judge(sentence, [passage], **kw) is None
        good = label == "S"
        tp += passed and good
        fp += passed and not good
        fn += (not passed) and good
        tn += (not passed) and not good
    return tp, fp, fn, tn


def test_the_lexical_support_check_on_the_labelled_set():
    tp, fp, fn, tn = measure()
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    print(f"support check on {len(LABELLED)} labelled pairs: precision {precision:.2f} (of sentences passed, share "
          f"supported), recall {recall:.2f} (of supported sentences, share passed); tp={tp} fp={fp} fn={fn} tn={tn}")
    assert precision >= 0.9 and recall >= 0.95


def test_numbers_and_api_names_must_be_in_the_passage():
    assert "states 73" in judge("Checkpointing every layer makes steps about 73 percent slower [1].", [COST])
    assert judge("Checkpointing makes steps 20 to 30 percent slower [1].", [COST]) is None
    why = judge("Use `checkpoint_sequential` for a whole nn.Sequential model [1].", [CKPT])
    assert "names checkpoint_sequential" in why
    assert api_names("Call `torch.cuda.memory_summary()` or GradScaler with pin_memory and torch.autocast.") == [
        "torch", "cuda", "memory_summary", "torch.autocast", "pin_memory", "GradScaler"]


def test_sentences_keep_their_citations_and_code_spans_do_not_split_them():
    text = "Use `torch.utils.checkpoint` here [1]. Then call `x.backward()`. [2] It recomputes [1, 3]! Is it slow?"
    assert split_sentences(text) == ["Use `torch.utils.checkpoint` here [1].", "Then call `x.backward()`. [2]",
                                     "It recomputes [1, 3]!", "Is it slow?"]
    assert [citations(s) for s in split_sentences(text)] == [[1], [2], [1, 3], []]
    assert citations("Index `x[1]` is fine [2].") == [2]


def test_review_flags_uncited_unknown_and_unsupported_sentences():
    text = ("Gradient checkpointing trades compute for memory by recomputing activations [1].\n\n"
            "ZeRO-3 partitions parameters across data parallel ranks.\n\n"
            "- Checkpointing makes steps about 73 percent slower [2].\n"
            "- Activation memory grows linearly with depth unless checkpointed [9].\n\n"
            "The passages do not say how this interacts with FSDP.\n\n"
            "```python\nx = 1  # a claim in code is not checked as prose [5]\n```\n")
    result = review(text, {1: CKPT, 2: COST})
    reasons = result.reasons
    assert len(result.verdicts) == 4 and len(reasons) == 3
    assert "cites no passage" in reasons[0] and "states 73" in reasons[1] and "[9], which is not one of" in reasons[2]


def test_keep_supported_removes_sentences_and_empty_list_items():
    text = ("First claim [1]. Second claim\nwraps the line [2].\n\n- only item to drop [3].\n- kept item [1].\n\n"
            "```python\nprint('code stays [3].')\n```\n")
    kept, removed = keep_supported(text, {"Second claim wraps the line [2].", "only item to drop [3]."})
    assert removed == 2
    assert kept == "First claim [1].\n\n- kept item [1].\n\n```python\nprint('code stays [3].')\n```\n"


def test_prose_sentences_skip_headings_tables_and_questions():
    text = "### Sub heading here now\n\n| a | b [1] |\n|---|---|\n\nWhat does it cost to run?\n\nShort one.\n"
    assert [s.factual for s in prose_sentences(text)] == [False, False]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_the_threshold_trades_precision_for_recall(threshold):
    tp, fp, fn, tn = measure(min_overlap=threshold)
    assert tp + fp + fn + tn == len(LABELLED)


@pytest.mark.parametrize("sentence,factual", [
    ("The passages do not say how this interacts with FSDP.", False),
    ("None of the sources covers CPU offloading.", False),
    ("This is not covered by the research retrieved for this section.", False),
    ("Checkpointing is not free: the source of the slowdown is the recomputation.", True),
    ("The passages do not say so, but `torch.compile` is 30 percent faster.", True),
    ("Research shows the optimizer does not need warmup.", True),
])
def test_a_note_on_what_research_lacks_needs_no_citation_and_a_claim_does(sentence, factual):
    assert is_factual(sentence) is factual
