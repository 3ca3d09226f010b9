"""The corpus index: what goes in, search, and rebuilding only when the inputs change."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

import kb.corpus.index as corpus_index
from kb.corpus.index import load_corpus
from kb.corpus.markdown import markdown_docs, text_docs
from kb.corpus.tokenize import tokenize
from kb.errors import ConfigError
from kb.workspace import init_workspace, open_workspace
from offline_fixtures import write_demo_package

KNOWLEDGE = textwrap.dedent("""\
    # GPU Memory Notes

    **A tagline.**

    ## Overview

    Pinned host memory makes host to device copies faster [1].

    ## Section 1: Caching allocator

    The caching allocator keeps freed blocks for reuse; `empty_cache` returns them [2].

    ```python
    import torch
    torch.cuda.empty_cache()
    ```

    ## Sources

    - [1] somewhere
    """)


def make_workspace(tmp_path, folders=(), packages=()):
    ws, _ = init_workspace(tmp_path / "ws")
    toml = (ws.root / "kb.toml").read_text()
    toml = toml.replace('folders = []', f'folders = {list(folders)!r}'.replace("'", '"'))
    toml = toml.replace('packages = ["torch"]', f'packages = {list(packages)!r}'.replace("'", '"'))
    (ws.root / "kb.toml").write_text(toml)
    (ws.knowledge_dir / "cuda").mkdir(parents=True)
    (ws.knowledge_dir / "cuda" / "01-memory.md").write_text(KNOWLEDGE)
    return open_workspace(ws.root)


def test_tokenizer_splits_identifiers_and_stems():
    assert tokenize("max_memory_allocated") == ["max_memory_alloc", "max", "memori", "alloc"]
    assert set(tokenize("DataLoader workers")) >= {"dataloader", "data", "loader", "worker"}
    assert tokenize("checkpointing") == tokenize("checkpoint")
    assert tokenize("Transformer") != tokenize("transform")  # stemming must not merge these


def test_markdown_sections_drop_sources_and_foreign_citations(tmp_path):
    path = tmp_path / "k.md"
    path.write_text(KNOWLEDGE)
    docs = markdown_docs(path, "knowledge/cuda/01-memory.md", "knowledge")
    assert [d.locator for d in docs] == ["knowledge/cuda/01-memory.md#overview",
                                         "knowledge/cuda/01-memory.md#section-1-caching-allocator"]
    assert docs[1].title == "GPU Memory Notes — Section 1: Caching allocator"
    assert "[2]" not in docs[1].text and "empty_cache" in docs[1].text
    assert docs[1].examples == ["import torch\ntorch.cuda.empty_cache()"]
    assert "```" not in docs[1].text


def test_text_files_are_chunked_by_line_range(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("\n\n".join(f"Paragraph {i} about pinned memory and data loading workers." * 20 for i in range(4)))
    docs = text_docs(path, "notes/notes.txt", "folder")
    assert len(docs) >= 2 and all(d.locator.startswith("notes/notes.txt#L") for d in docs)


def test_index_builds_searches_and_is_reused(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path)
    (ws.root / "notes").mkdir()
    (ws.root / "notes" / "loader.md").write_text("# Loader\n\n## Workers\n\nUse several data loading workers and pinned memory.\n")
    toml = (ws.root / "kb.toml").read_text().replace("folders = []", 'folders = ["notes"]')
    (ws.root / "kb.toml").write_text(toml)
    ws = open_workspace(ws.root)
    index = load_corpus(ws)
    assert {d.locator for d in index.docs} == {"knowledge/cuda/01-memory.md#overview",
                                                "knowledge/cuda/01-memory.md#section-1-caching-allocator",
                                                "notes/loader.md#workers"}
    assert index.search("caching allocator empty_cache")[0].doc.locator.endswith("#section-1-caching-allocator")
    assert index.search("data loading workers")[0].doc.kind == "folder"

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt although nothing changed")

    monkeypatch.setattr(corpus_index, "collect_docs", boom)
    again = load_corpus(ws)
    assert len(again) == len(index)
    monkeypatch.undo()

    # A changed input (a new knowledge file) rebuilds, and the old index folder goes away.
    (ws.knowledge_dir / "cuda" / "02-streams.md").write_text("# Streams\n\n## Overview\n\nCUDA streams let kernels overlap with copies.\n")
    rebuilt = load_corpus(ws)
    assert any(d.locator.startswith("knowledge/cuda/02-streams.md") for d in rebuilt.docs)
    assert len(list((ws.state_dir / "corpus").glob("index-*"))) == 1


def test_files_written_by_the_offline_engine_are_not_indexed(tmp_path):
    ws = make_workspace(tmp_path)
    (ws.knowledge_dir / "cuda" / "09-generated.md").write_text(
        "---\ntitle: Generated\nengine: offline\n---\n\n# Generated\n\n## Overview\n\nQuoted text from the corpus itself, long enough.\n")
    index = load_corpus(ws)
    assert not any("09-generated" in d.locator for d in index.docs)


def test_folders_outside_the_workspace_are_refused_and_missing_ones_warned(tmp_path):
    ws = make_workspace(tmp_path, folders=["../elsewhere"])
    with pytest.raises(ConfigError, match="outside the workspace"):
        load_corpus(ws)
    ws = make_workspace(tmp_path / "b", folders=["missing"])
    assert any("missing" in w for w in load_corpus(ws).info["warnings"])


def test_package_docstrings_are_cached_apart_from_the_tree(tmp_path, monkeypatch):
    write_demo_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    ws = make_workspace(tmp_path, packages=["kbdemo", "kb_not_installed_pkg"])
    index = load_corpus(ws)
    assert index.search("recompute activations")[0].doc.locator.startswith("kbdemo")
    assert any("kb_not_installed_pkg" in w for w in index.info["warnings"])
    assert index.info["packages"] == {"kbdemo": None}

    calls = []
    monkeypatch.setattr(corpus_index, "extract_in_subprocess", lambda *a, **k: calls.append(a))
    (ws.knowledge_dir / "cuda" / "03-new.md").write_text("# New\n\n## Overview\n\nA new knowledge file about memory.\n")
    rebuilt = load_corpus(ws)
    assert calls == []  # only the tree changed: the package's docstrings came from the cache
    assert any(d.locator.startswith("kbdemo") for d in rebuilt.docs)


def test_a_standard_library_module_is_named_as_such_not_with_version_none(tmp_path):
    from kb.engine.offline.research import LocalResearcher

    ws = make_workspace(tmp_path, packages=["graphlib"])
    index = load_corpus(ws)
    python = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    sorter = next(d for d in index.docs if d.locator == "graphlib.TopologicalSorter")
    assert sorter.source == f"graphlib ({python} standard library)"
    described = LocalResearcher(ws, index=index).describe()
    assert f"graphlib ({python} standard library) docstrings" in described
    assert "None" not in described
