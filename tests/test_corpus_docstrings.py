"""Package docstrings as corpus documents: reST to Markdown, doctests to Python, the module walk."""

from __future__ import annotations

import ast
import re
import textwrap
import sys

import pytest

from kb.corpus.docstrings import extract_in_subprocess, module_names
from kb.corpus.rst import doctest_to_python, inline, parse_docstring
from kb.errors import ConfigError
from offline_fixtures import write_demo_package

DOC = '''Checkpoint a model or part of the model.

    Activation checkpointing trades compute for memory. See :func:`~torch.utils.checkpoint.checkpoint_sequential`
    and ``use_reentrant``.

    .. note::
        The reentrant variant differs.

    .. math::
        \\text{out} = x

    Args:
        function: what to run in the forward pass. It should know how
            to handle the inputs.
        use_reentrant(bool, optional): which variant. Default: ``None``

    Example::

        >>> # xdoctest: +SKIP("stub")
        >>> model = nn.Sequential(
        ...     nn.Linear(2, 2))
        >>> model(x)
        tensor([1., 2.])
        >>> for i in range(2):
        ...     print(i)
        0
        1
'''


def test_rest_escapes_after_a_literal_and_citation_references_read_as_text():
    said = inline('overwrites its ``param_group["lr"]``\\s. Refer to [Henry2019]_ for details; `\\tanh` and `a` and `\\text{x}`.')
    assert said == 'overwrites its `param_group["lr"]`s. Refer to [Henry2019] for details; `\\tanh` and `a` and `\\text{x}`.'
    # Spans pair left to right: the text between two literals is no literal whose backslash could go.
    assert inline("If a 2-``tuple``, uses (:math:`\\text{left}`)") == "If a 2-`tuple`, uses (`\\text{left}`)"
    assert inline("it is set to '[hostname]_[pid]' by default") == "it is set to '[hostname]_[pid]' by default"
    # An escaped space glues a suffix (the `i`\\ th row, nn.Module\\ s); before a literal or in math it stays.
    assert inline("the :attr:`i`\\ th row of (functions or nn.Module\\ s); ``NaN``\\ s") == "the `i`th row of (functions or nn.Modules); `NaN`s"
    assert inline(":attr:`hermitian`\\ `= True`") == "`hermitian`\\ `= True`"


def test_inline_roles_and_literals_become_code_spans():
    assert inline(":func:`~a.b.fn` and :class:`torch.nn.Module` and ``x=1``") == "`fn` and `torch.nn.Module` and `x=1`"
    assert inline(":ref:`AMP examples <amp-examples>`") == "AMP examples"
    # A reference to a target defined further down (OneCycleLR's paper) reads as its words, not `...`_.
    assert inline("the paper `Super-Convergence:\n    Very Fast Training`_.") == "the paper Super-Convergence: Very Fast Training."


def test_docstring_blocks_args_notes_and_examples():
    parsed = parse_docstring(DOC)
    assert parsed.blocks[0] == "Checkpoint a model or part of the model."
    assert "`checkpoint_sequential`" in parsed.blocks[1] and "`use_reentrant`" in parsed.blocks[1]
    assert "**Note:** The reentrant variant differs." in parsed.blocks
    assert "- `function`: what to run in the forward pass. It should know how to handle the inputs." in parsed.blocks
    assert any(b.startswith("- `use_reentrant` (bool, optional): which variant.") for b in parsed.blocks)
    assert not any("text{out}" in b for b in parsed.blocks)  # math blocks are not prose
    assert len(parsed.examples) == 1
    code = parsed.examples[0]
    ast.parse(code)
    assert "model = nn.Sequential(\n    nn.Linear(2, 2))" in code
    assert "# tensor([1., 2.])" in code and ">>>" not in code and "..." not in code.replace("# ...", "")
    assert "# xdoctest: +SKIP" in code  # kept for the writer, which turns it into kb:skip


def test_code_indented_under_prose_without_a_literal_marker_is_an_example():
    # prometheus_client's style: Markdown's indented code, no "::" before it; an expression set apart stays prose.
    doc = """Gauge metric, to report instantaneous values.

         Gauges can go both up and down.

            from prometheus_client import Gauge

            g = Gauge('my_inprogress_requests', 'Description of gauge')
            g.inc()      # Increment by 1

         A pipeline is drawn as:

            quant1 - [dequant1 - fp32_linear - quant2] - dequant2

         and calls it like this.
        """
    parsed = parse_docstring(doc)
    assert parsed.examples == ["from prometheus_client import Gauge\n\ng = Gauge('my_inprogress_requests', "
                               "'Description of gauge')\ng.inc()      # Increment by 1"]
    assert not any("import" in b for b in parsed.blocks)
    assert "quant1 - [dequant1 - fp32_linear - quant2] - dequant2" in parsed.blocks
    assert parsed.blocks[0] == "Gauge metric, to report instantaneous values."
    # ... and code right under the line that leads into it, which then says nothing of its own.
    info = parse_docstring("""Info metric, key-value pairs.

         Example usage:
            from prometheus_client import Info

            i = Info('my_build', 'Description of info')

         Info metrics do not work in multiprocess mode.
        """)
    assert info.examples == ["from prometheus_client import Info\n\ni = Info('my_build', 'Description of info')"]
    assert info.blocks == ["Info metric, key-value pairs.", "Info metrics do not work in multiprocess mode."]


def test_one_argument_per_line_each_named_in_backticks_is_an_argument_list():
    doc = """Delete metrics from the given pushgateway.

    `gateway` the url for your push gateway. Either of the form
              'http://pushgateway.local', or 'pushgateway.local'.
    `job` is the job label to be attached to all pushed metrics
    `timeout` is how long delete will attempt to connect before giving up.

    `fork` will return immediately, so the return value may not be computed yet.
    `fork` will not execute in parallel when invoked while tracing.
    """
    blocks = parse_docstring(doc).blocks
    assert blocks[1:4] == ["- `gateway`: the url for your push gateway. Either of the form 'http://pushgateway.local', "
                           "or 'pushgateway.local'.", "- `job`: is the job label to be attached to all pushed metrics",
                           "- `timeout`: is how long delete will attempt to connect before giving up."]
    # Prose that wraps at a name it says twice stays one paragraph.
    assert blocks[4].startswith("`fork` will return immediately") and len(blocks) == 5


def test_an_argument_whose_type_holds_parentheses_is_still_an_argument():
    doc = """Base LAMB optimizer.

    Arguments:
        betas (`tuple(float, float)`, defaults to (0.9, 0.999)):
            The beta values are the decay rates of the first and second-order moment of the optimizer.
    """
    assert parse_docstring(doc).blocks[1] == ("- `betas` (`tuple(float, float)`, defaults to (0.9, 0.999)): The beta "
                                              "values are the decay rates of the first and second-order moment of the "
                                              "optimizer.")


def test_an_arguments_own_bullet_list_reads_as_clauses_of_its_item():
    doc = """Optimize a function.

    Args:
        mode (str): Can be either "default" or "reduce-overhead"

            - "default" is the default mode, a good balance

            - "reduce-overhead" uses CUDA graphs,
              useful for small batches.
    """
    assert parse_docstring(doc).blocks[1] == ('- `mode` (str): Can be either "default" or "reduce-overhead": "default" '
                                              'is the default mode, a good balance; "reduce-overhead" uses CUDA graphs, '
                                              'useful for small batches.')


def test_doctest_outputs_are_capped_and_bad_examples_dropped():
    lines = [">>> x = list(range(9))", ">>> x", *[str(i) for i in range(9)]]
    code = doctest_to_python(lines)
    assert code.count("\n# ") == 4 and code.endswith("# ...")
    assert doctest_to_python([">>> def broken(:", "...     pass"]) is None


def test_a_shell_command_with_doctest_prompts_stays_with_the_paragraph_that_leads_into_it():
    doc = textwrap.dedent("""\
        Retrieves the runtime module.

        To run this example and save the profiling information, execute:
            >>> $ nvprof --profile-from-start off -o trace.prof -- python app.py

        The `--profile-from-start off` option starts profiling at the first cudaProfilerStart call.
        """)
    parsed = parse_docstring(doc)
    assert parsed.examples == []  # no Python
    assert ("To run this example and save the profiling information, execute: "
            "`$ nvprof --profile-from-start off -o trace.prof -- python app.py`") in parsed.blocks


def test_an_arguments_own_example_is_an_example_and_a_hyphen_split_by_a_line_break_joins():
    doc = textwrap.dedent("""\
        Wraps a module.

        This yields an interleaving of all-
        reduces and broadcasts.

        Args:
            policy (Callable): Says which submodules to wrap. We recommend
                printing the model. Example::

                    >>> def my_policy(
                    >>>     module, recurse: bool,
                    >>> ) -> bool:
                    >>>     return recurse
            limit (int): How many.
        """)
    parsed = parse_docstring(doc)
    assert "This yields an interleaving of all-reduces and broadcasts." in parsed.blocks
    assert "- `policy` (Callable): Says which submodules to wrap. We recommend printing the model." in parsed.blocks
    assert parsed.examples == ["def my_policy(\n    module, recurse: bool,\n) -> bool:\n    return recurse"]
    assert "- `limit` (int): How many." in parsed.blocks


def test_a_default_of_sys_maxsize_reads_as_its_name():
    import sys

    from kb.corpus.docstrings import _signature

    def record(enabled="all", max_entries=sys.maxsize, limit=92233720368547758070):
        pass

    assert _signature(record) == "(enabled='all', max_entries=sys.maxsize, limit=92233720368547758070)"


def test_deprecated_directive_is_flagged():
    parsed = parse_docstring("Old API.\n\n.. deprecated:: 2.1\n    Use the new one.\n")
    assert parsed.deprecated
    assert any(b.startswith("**Deprecated since 2.1:**") for b in parsed.blocks)


def test_module_names_skip_private_and_test_modules(tmp_path):
    pkg = write_demo_package(tmp_path)
    names = module_names("kbdemo", pkg)
    assert names == ["kbdemo", "kbdemo.sub", "kbdemo.sub.impl"]



def test_module_names_of_a_package_inside_a_namespace_start_from_the_namespace(tmp_path):
    # google.cloud.storage: the folder is .../google/cloud/storage, and its modules are google.cloud.storage.*
    pkg = tmp_path / "space" / "kbdemo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Demo."""\n')
    (pkg / "transfer.py").write_text('"""Transfers."""\n')
    assert module_names("space.kbdemo", pkg) == ["space.kbdemo", "space.kbdemo.transfer"]


@pytest.fixture
def demo_package(tmp_path, monkeypatch):
    write_demo_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + ":" + ":".join(sys.path))
    return tmp_path


def test_extract_walks_public_api_under_shortest_path(demo_package, tmp_path):
    docs = {d.locator: d for d in extract_in_subprocess("kbdemo", tmp_path / "out.jsonl", budget_s=20)}
    # Re-exported at the top: indexed once, under the short path, with the long one as an alias.
    assert "kbdemo.recompute" in docs and "kbdemo.sub.impl.recompute" not in docs
    assert "kbdemo.sub.impl.recompute" in docs["kbdemo.recompute"].keywords
    assert docs["kbdemo.recompute"].text.startswith("`recompute(fn, *args, budget=0.5)`")
    assert docs["kbdemo.recompute"].examples == ["recompute(lambda x: x, 3)\n# 3"]
    assert "kbdemo.Recompute.enter" in docs
    assert docs["kbdemo.sub.impl.old_recompute"].deprecated
    assert not any("_private" in loc or "_hidden" in loc or ".tests" in loc for loc in docs)
    assert docs["kbdemo"].kind == "doc" and docs["kbdemo"].source.startswith("kbdemo")


def test_extract_refuses_a_package_that_is_not_installed(tmp_path):
    with pytest.raises(ConfigError, match="not installed"):
        extract_in_subprocess("kb_no_such_package_xyz", tmp_path / "x.jsonl")


def test_a_long_signature_is_cut_between_arguments_and_long_defaults_give_way_to_names():
    from kb.corpus.docstrings import MAX_SIGNATURE, _signature

    class Policy:
        def __repr__(self):
            return "Policy(" + ", ".join(f"option_{n}=None" for n in range(8)) + ")"

    def loader(dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0, collate_fn=None,
               pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None, multiprocessing_context=None,
               generator=None, *, policy=Policy(), prefetch_factor=None, persistent_workers=False,
               pin_memory_device="", in_order=True, betas=(0.9, 0.999), snapshot_every=10, keep_last=3):
        """A loader."""

    sig = _signature(loader)
    assert len(sig) <= MAX_SIGNATURE and sig.endswith(", ...)")
    assert "Policy(" not in sig and "policy=..." in sig  # the names survive, a long default does not
    # Cut between two arguments, never inside a name or a default.
    kept = sig[1:-len(", ...)")].split(", ")
    assert all(re.fullmatch(r"\*|\w+(=.+)?", k) or k.endswith(")") or k.startswith("betas") for k in kept), kept
    assert "pin_memory=False" in sig and "prefetch_factor=None" in sig
def test_a_class_documented_in_its_init_is_indexed_with_that_docstring(tmp_path, monkeypatch):
    # lightning's Trainer and bitsandbytes' 8-bit optimizers have no class docstring: __init__ holds it.
    (tmp_path / "kbinitdoc.py").write_text(textwrap.dedent('''\
        """Optimizers documented the Sphinx autoclass_content="both" way."""


        class Adam8bit:
            def __init__(self, params, lr=1e-3, optim_bits=8):
                """
                8-bit Adam optimizer that keeps its states in 8 bits to save memory.

                Arguments:
                    params (`torch.Tensor`): The input parameters to optimize.
                    optim_bits (`int`, defaults to 8): The number of bits of the optimizer state.
                """


        class Bare:
            def __init__(self):
                pass


        class Both:
            """A class whose own docstring is long enough to stand alone."""

            def __init__(self, x):
                """The init docstring that is not used when the class has its own."""
        '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + ":" + ":".join(sys.path))
    docs = {d.locator: d for d in extract_in_subprocess("kbinitdoc", tmp_path / "out.jsonl", budget_s=20)}
    adam = docs["kbinitdoc.Adam8bit"]
    assert adam.text.startswith("`Adam8bit(params, lr=0.001, optim_bits=8)`")
    assert "8-bit Adam optimizer that keeps its states in 8 bits" in adam.text
    assert "- `optim_bits`" in adam.text
    assert "kbinitdoc.Bare" not in docs
    assert "init docstring" not in docs["kbinitdoc.Both"].text


def test_a_signature_line_with_the_summary_under_it_is_two_blocks():
    # torch's C methods (Tensor.type) write the summary on the line right under the signature: the summary is the
    # doc's first sentence, not part of the code span (the digest's "Purpose" cell reads it).
    doc = ("\ntype(dtype=None, non_blocking=False, **kwargs) -> str or Tensor\nReturns the type if `dtype` is not provided,"
           " else casts this object to\nthe specified type.\n\nIf this is already of the correct type, no copy is performed.\n")
    parsed = parse_docstring(doc)
    assert parsed.blocks[0] == "`type(dtype=None, non_blocking=False, **kwargs) -> str or Tensor`"
    assert parsed.blocks[1] == "Returns the type if `dtype` is not provided, else casts this object to the specified type."
    assert parse_docstring("add(other) -> Tensor\n\nAdds other.").blocks == ["`add(other) -> Tensor`", "Adds other."]


def test_a_licence_header_read_as_a_module_docstring_is_no_document(tmp_path, monkeypatch):
    # deepspeed's modules open with "# Copyright ... / # SPDX-License-Identifier ..." comments that their
    # __init__ turns into docstrings: 27 of its documents said nothing but that.
    pkg = tmp_path / "kblicence"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""Copyright The Demo Team\n\nSPDX-License-Identifier: Apache-2.0"""\n')
    (pkg / "utils.py").write_text('"""Copyright NVIDIA/Megatron\n\nHelper functions for the demo."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + ":" + ":".join(sys.path))
    docs = {d.locator: d for d in extract_in_subprocess("kblicence", tmp_path / "out.jsonl", budget_s=20)}
    assert "kblicence" not in docs  # nothing but the licence
    assert docs["kblicence.utils"].text == "Helper functions for the demo."  # the header goes, the rest stays


def test_any_rst_section_underline_makes_the_line_above_a_heading():
    parsed = parse_docstring("Launch it.\n\nFault tolerant (3 failures)\n++++++++++++++++++++++++++\n\nRun so.\n")
    assert parsed.blocks == ["Launch it.", "**Fault tolerant (3 failures)**", "Run so."]


def test_code_written_unindented_under_its_directive_is_an_example_not_prose():
    # deepspeed's set_gradient_accumulation_boundary: the code follows `.. code-block::` without indent, then Arguments.
    doc = ("Overrides the boundary state. See example below:\n.. code-block:: python\nengine.set_boundary(False)\n"
           "for _ in range(2):\n    engine.backward(loss)\nengine.step()\nArguments:\n    is_boundary (bool): are we at one?\n")
    parsed = parse_docstring(doc)
    assert parsed.blocks == ["Overrides the boundary state. See example below:", "- `is_boundary` (bool): are we at one?"]
    assert parsed.examples == ["engine.set_boundary(False)\nfor _ in range(2):\n    engine.backward(loss)\nengine.step()"]


def test_a_default_objects_memory_address_is_not_part_of_the_corpus(tmp_path, monkeypatch):
    # pybind writes default arguments into the docstring as <Options object at 0x7f...>: a new address each time the
    # corpus is built, so the same torch would give other documents (and other scores) on every build.
    pkg = tmp_path / "kbaddress"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''\
        def allreduce(*args, **kwargs):
            pass


        allreduce.__doc__ = ("allreduce(self, tensors, opts: c10d.AllreduceOptions = <c10d.AllreduceOptions object at "
                             f"{hex(id(object()))}>) -> Work\\n\\nAllreduces the provided tensors across all processes.")
        '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + ":" + ":".join(sys.path))
    docs = {d.locator: d for d in extract_in_subprocess("kbaddress", tmp_path / "out.jsonl", budget_s=20)}
    text = docs["kbaddress.allreduce"].text
    assert "opts: c10d.AllreduceOptions = c10d.AllreduceOptions()" in text and " at 0x" not in text


def test_an_output_the_docs_do_not_check_is_shown_as_one_possible_output():
    # DataLoader with workers prints its batches in any order: the docs mark it, and a reader must not take the
    # comment for what every run prints (kb's run of it printed another order).
    code = doctest_to_python([
        '>>> # xdoctest: +IGNORE_WANT("non deterministic")',
        ">>> print([3, 5, 4, 6])",
        "[3, 5, 4, 6]",
        ">>> print(1)",
        "1",
    ])
    assert "# [3, 5, 4, 6]  (one possible output: non deterministic)" in code
    assert code.endswith("print(1)\n# 1")
