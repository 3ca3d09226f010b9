"""Small corpora and plans for the offline engine's tests (no torch needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from kb.corpus.documents import CorpusDoc
from kb.corpus.index import CorpusIndex
from kb.plan import parse_plan

PLAN = textwrap.dedent("""\
    # Knowledge Expansion: Training Tricks (2 runners in 1 batch)

    **Date**: 2025-11-14

    # BATCH 1: Memory (2 runners)

    ## PART 1: Activation Checkpointing (~300 lines)

    - [ ] PART 1: Create training/00-activation-checkpointing.md

    **Step 0: Check Existing Knowledge**
    - [ ] Read training/notes.md (old notes)

    **Step 1: Web Research**
    - [ ] Search: "activation checkpointing recomputation memory"

    **Step 2: Create Knowledge File**
    - [ ] Section 1: Activation checkpointing basics (recomputation tradeoff)
    - [ ] Section 2: Checkpoint API (demo.checkpoint.checkpoint)
    - [ ] Section 3: DALI pipelines (NVIDIA data loading library)
    - [ ] Section 4: Learning rate warmup (linear schedule)

    **Step 3: Create KNOWLEDGE DROP**
    - [ ] Create KNOWLEDGE-DROP-checkpointing-2025-11-14-[TIME].md
    """)

DEMO_DOCS = [
    CorpusDoc(kind="doc", locator="demo.checkpoint.checkpoint", title="demo.checkpoint.checkpoint", source="demo 1.0",
              keywords="demo.checkpoint.checkpoint",
              text="`checkpoint(function, *args, use_reentrant=None)`\n\nCheckpoint a model or part of the model.\n\n"
                   "Activation checkpointing is a technique that trades compute for memory: activations are "
                   "recomputed in the backward pass instead of being stored.\n\n"
                   "- `use_reentrant` (bool): which checkpointing variant to use, see [1] for details.",
              examples=["out = checkpoint(model, x, use_reentrant=False)", "y = torch.ones(2)\ny.sum()\n# tensor(2.)"]),
    CorpusDoc(kind="doc", locator="demo.checkpoint.checkpoint_sequential", title="demo.checkpoint.checkpoint_sequential",
              source="demo 1.0", keywords="demo.checkpoint.checkpoint_sequential",
              text="Checkpoint a sequential model to save memory.\n\nAll segments except the last will not store "
                   "the intermediate activations; they are recomputed during the backward pass."),
    CorpusDoc(kind="doc", locator="demo.data.Loader", title="demo.data.Loader", source="demo 1.0",
              keywords="demo.data.Loader",
              text="Data loader combines a dataset and a sampler.\n\n- `num_workers` (int): how many subprocesses "
                   "to use for data loading.\n\n- `pin_memory` (bool): copy tensors into pinned memory."),
    CorpusDoc(kind="doc", locator="demo.io.save", title="demo.io.save", source="demo 1.0", keywords="demo.io.save",
              text="Save an object to a disk file, for example a training checkpoint of the model state."),
    CorpusDoc(kind="doc", locator="demo.optim.Adam", title="demo.optim.Adam", source="demo 1.0", keywords="demo.optim.Adam",
              text="Implements the Adam algorithm.\n\n- `lr` (float): learning rate (default: 1e-3)."),
]


def demo_index(extra: list[CorpusDoc] | None = None) -> CorpusIndex:
    docs = list(DEMO_DOCS) + list(extra or [])
    return CorpusIndex.build(docs, {"packages": {"demo": "1.0"}, "knowledge_files": 0})


def demo_plan():
    return parse_plan(PLAN, "plans/training.md")


def write_demo_package(root: Path) -> Path:
    """A small importable package ``kbdemo`` with public, private, test and deprecated parts."""
    pkg = root / "kbdemo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "_private").mkdir()
    (pkg / "tests").mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''\
        """Demo package for kb's corpus tests: tools to checkpoint activations."""
        from kbdemo.sub.impl import Recompute, recompute
        __all__ = ["Recompute", "recompute"]
        '''))
    (pkg / "sub" / "__init__.py").write_text('"""The sub package of kbdemo, which holds the implementation."""\n')
    # A test module shipped inside the package (deepspeed.sequence.test_autosp): never indexed.
    (pkg / "sub" / "test_impl.py").write_text('"""Tests of the implementation: recompute activations in a test."""\n')
    (pkg / "sub" / "impl.py").write_text(textwrap.dedent('''\
        """Implementation module of the kbdemo recomputation helpers."""


        def recompute(fn, *args, budget=0.5):
            """Recompute activations in the backward pass to save memory.

            Args:
                fn (callable): the function whose activations are recomputed.
                budget (float, optional): the share of memory to keep. Default: ``0.5``

            Example::

                >>> recompute(lambda x: x, 3)
                3
            """
            return fn(*args)


        def old_recompute(fn):
            """Recompute activations the old way.

            .. deprecated:: 1.2
                Use :func:`kbdemo.recompute` instead.
            """
            return fn()


        class Recompute:
            """A context that recomputes activations for every call inside it."""

            def enter(self):
                """Start recomputing activations for the calls that follow."""
                return self

            def _hidden(self):
                """A private helper that must not be indexed at all."""
        '''))
    (pkg / "_private" / "__init__.py").write_text('"""Private internals that kb must never index."""\n\ndef secret():\n    """A private function with a long enough docstring."""\n')
    (pkg / "_config.py").write_text(textwrap.dedent('''\
        """"""
        import os

        # fuse pointwise kernels into their consumers
        fuse_kernels = True

        no_comment_option = 3

        # TODO: remove
        old_flag = False


        class gpu:
            """Options of the GPU code generator."""

            # capture the generated kernels in CUDA graphs
            graphs = os.environ.get("KBDEMO_GRAPHS") == "1"
        '''))
    (pkg / "tests" / "__init__.py").write_text('"""Tests of kbdemo that kb must never index or import."""\nraise RuntimeError("imported a test module")\n')
    return pkg
