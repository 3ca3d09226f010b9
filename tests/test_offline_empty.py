"""An honest empty section, end to end: the drop records it, INDEX.md marks it, SKILL.md counts only what is filled."""

from __future__ import annotations

from kb.records import DropRecord, KnowledgeMeta, SourceRef, write_drop, write_knowledge
from kb.workspace import init_workspace
from conftest import run_kb

PLAN = """# Knowledge Expansion: Demo (1 runner in 1 batch)

# BATCH 1: Demo

## PART 1: Streams

- [✓] PART 1: Create demo/00-streams.md (Completed 2025-01-01 10:00)

**Step 2: Create Knowledge File**
- [ ] Section 1: Stream basics
- [ ] Section 2: Nsight timelines
"""

BODY = """# Streams

## Section 1: Stream basics

From the docstring of `torch.cuda.Stream` [1]:

> Wrapper around a CUDA stream.

## Section 2: Nsight timelines

Research found nothing on this section in torch docstrings (the corpus never mentions Nsight).

## Sources

- [1] `torch.cuda.Stream`
"""


def test_index_marks_empty_sections_and_skill_counts_filled_ones(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    (ws.plans_dir / "demo.md").write_text(PLAN, encoding="utf-8")
    write_knowledge(ws.knowledge_dir / "demo" / "00-streams.md",
                    KnowledgeMeta(title="Streams", plan="plans/demo.md", batch=1, part=1,
                                  sections=["Stream basics", "Nsight timelines"],
                                  sources=[SourceRef(1, "torch.cuda.Stream", "doc", "torch.cuda.Stream")], engine="offline"),
                    BODY)
    write_drop(ws.drops_dir / "KNOWLEDGE-DROP-streams-2025-01-01-1000.md",
               DropRecord(plan="plans/demo.md", batch=1, part=1, title="Streams", status="partial",
                          knowledge_file="knowledge/demo/00-streams.md", created="2025-01-01T10:00:00Z",
                          sections_written=["Stream basics", "Nsight timelines"], sections_empty=["Nsight timelines"]))
    result = run_kb("consolidate", "--write-only", cwd=ws.root, timeout=120)
    assert result.code == 0, result.err + result.out
    index = (ws.root / "INDEX.md").read_text(encoding="utf-8")
    assert "Stream basics · Nsight timelines (empty)" in index
    assert "2 sections (1 marked empty: research found nothing)" in index
    skill = (ws.root / "SKILL.md").read_text(encoding="utf-8")
    assert "with 1 of 2 planned sections filled with cited excerpts (the other 1 say research found nothing)" in skill
    assert "working code" not in skill
    # The partial PART is done, not failed: the plan is filed under completed/.
    assert (ws.plans_dir / "completed" / "demo.md").exists()
    report = run_kb("report", "--json", "--strict", cwd=ws.root, timeout=120)
    import json

    totals = json.loads(report.out)["totals"]
    assert (totals["sections_filled"], totals["sections_empty"], totals["sections_unsupported"]) == (1, 1, 0)


def test_consolidate_counts_a_partial_drop_as_done_not_failed(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    (ws.plans_dir / "demo.md").write_text(PLAN, encoding="utf-8")
    write_knowledge(ws.knowledge_dir / "demo" / "00-streams.md",
                    KnowledgeMeta(title="Streams", plan="plans/demo.md", batch=1, part=1, engine="offline",
                                  sources=[SourceRef(1, "torch.cuda.Stream", "doc", "torch.cuda.Stream")]), BODY)
    write_drop(ws.drops_dir / "KNOWLEDGE-DROP-streams-2025-01-01-1000.md",
               DropRecord(plan="plans/demo.md", batch=1, part=1, title="Streams", status="partial",
                          knowledge_file="knowledge/demo/00-streams.md", created="2025-01-01T10:00:00Z",
                          sections_written=["Stream basics", "Nsight timelines"], sections_empty=["Nsight timelines"]))
    result = run_kb("consolidate", "--write-only", cwd=ws.root, timeout=120)
    assert result.code == 0, result.err
    assert "1 partial (sections marked empty)" in result.out and "failed" not in result.out
