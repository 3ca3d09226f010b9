"""One set of counts on an adopted tree: a file of the original shape (no front matter, a
``## Sources`` list) has the same number of sources in INDEX.md, consolidate's totals and
kb report."""

from __future__ import annotations

from kb.consolidate import consolidate
from kb.consolidate.scan import body_source_kinds
from kb.report.collect import collect_report
from test_consolidate_support import make_workspace

ORIGINAL_SHAPE = """# Gradient checkpointing

**Trading compute for memory in long training runs.**

## Overview

Activations are recomputed in the backward pass.

## Section 1: How it works

Recompute instead of store.

## Sources

### Source Documents

- [Memory notes](../perf/00-memory.md) - what is kept on the device

### Web Research

- [Checkpointing docs](https://example.org/ckpt) - the API (accessed 2025-01-31)
- [A blog post](https://example.org/blog) - measurements (accessed 2025-01-31)
- A talk at a conference, no link
"""


def test_a_sources_list_is_read_by_kind():
    assert body_source_kinds(ORIGINAL_SHAPE) == ["knowledge", "web", "web", "other"]


def test_index_consolidate_and_report_count_the_same_sources(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    (ws.knowledge_dir / "perf").mkdir(parents=True, exist_ok=True)
    (ws.knowledge_dir / "perf" / "01-ckpt.md").write_text(ORIGINAL_SHAPE)
    result = consolidate(ws, commit=False)
    report = collect_report(ws).totals()
    assert result.totals["sources"] == 4
    assert sum(report["sources"].values()) == result.totals["sources"]
    assert report["sources"]["web"] == 2 and report["sources"]["knowledge"] == 1
    assert "· 4 sources ·" in ws.index_path.read_text()


def test_stdout_json_commit_message_and_report_agree_on_an_adopted_tree(tmp_path):
    import json
    import re

    from conftest import run_kb
    from test_adopt_drops import _tree
    from test_consolidate_support import run_git

    ws = _tree(tmp_path / "a")
    run_git(ws.root, "add", "-A")
    run_git(ws.root, "commit", "-q", "-m", "the tree as it was")
    out = run_kb("consolidate", cwd=ws.root).out
    said = re.search(r"Consolidated (\d+) drops: (\d+) files added, (\d+) changed", out)
    summary = run_git(ws.root, "log", "-1", "--format=%s")
    told = re.search(r"(\d+) drops, (\d+) files added, (\d+) changed", summary)
    assert said and told and said.groups() == told.groups() == ("20", "20", "0")
    index_sources = re.search(r"(\d+) sources", out).group(1)
    assert f"· {index_sources} sources ·" in ws.index_path.read_text()
    report = json.loads(run_kb("report", "--json", cwd=ws.root).out)
    assert sum(report["totals"]["sources"].values()) == int(index_sources)

    other = _tree(tmp_path / "b")
    data = json.loads(run_kb("consolidate", "--json", cwd=other.root).out)
    assert (len(data["drops"]), len(data["knowledge"]["added"])) == (20, 20)
