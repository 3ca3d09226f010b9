"""What `kb consolidate` prints, its --json and its commit messages, byte for byte, on a fixed
fixture tree: a first consolidation, one more batch, and a no-op, with and without --json.

The expected texts under tests/fixtures/consolidate-golden/ were recorded with kb before its
oracle was split into decisions and I/O (issue 26): any change in what it says shows here.
Run with KB_GOLDEN_WRITE=1 to record them again (only for a deliberate change of output).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from conftest import run_kb
from kb.records import DropRecord, KnowledgeMeta, SourceRef, write_drop, write_knowledge
from test_consolidate_support import body_text, make_workspace, plan_text, run_git

GOLDEN = Path(__file__).parent / "fixtures" / "consolidate-golden"
CREATED = "2025-11-16T14:00:00Z"


def _knowledge(ws, rel, title, seed, plan=None, part=None, batch=1, body=None):
    meta = KnowledgeMeta(title=title, plan=plan, batch=batch, part=part, sections=["Basics"], created=CREATED,
                         sources=[SourceRef(1, "torch docs", "doc", "torch.cuda")], engine="offline")
    write_knowledge(ws.knowledge_dir / rel, meta, body if body is not None else body_text(title, seed))


def _drop(ws, rel, title, plan, part, batch=1, status="complete", slug=None):
    write_drop(ws.drops_dir / f"KNOWLEDGE-DROP-{slug or Path(rel).stem}-2025-11-16-{1400 + part:04d}.md", DropRecord(
        plan=plan, batch=batch, part=part, title=title, status=status, knowledge_file=f"knowledge/{rel}",
        created=CREATED, sections_written=["Basics"], reason=None if status == "complete" else "the writer failed"))


def build(ws) -> None:
    """Two plans (one finishes and moves), a failed PART, a file without front matter and its
    bold-key drop, a near-duplicate nobody accounts for, a folder with a space, snippet results."""
    (ws.plans_dir / "perf.md").write_text(plan_text(
        [(1, "perf/00-a.md", True), (2, "perf/01-b.md", True)],
        reads={1: ["knowledge/perf/99-missing.md"]}, cites={2: "perf/07 (nowhere), perf/00"}, topic="Perf"))
    (ws.plans_dir / "io.md").write_text(plan_text(
        [(1, "io/00-c.md", True), (2, "io/01-e.md", False), (3, "my notes/00-f.md", True)], topic="IO"))
    _knowledge(ws, "perf/00-a.md", "Alpha", 1, plan="plans/perf.md", part=1)
    _drop(ws, "perf/00-a.md", "Alpha", "plans/perf.md", 1)
    _knowledge(ws, "perf/01-b.md", "Beta", 2, plan="plans/perf.md", part=2)
    _drop(ws, "perf/01-b.md", "Beta", "plans/perf.md", 2)
    _knowledge(ws, "perf/02-dup.md", "Alpha again", 1, body=body_text("Alpha", 1))  # near-duplicate, no drop
    _knowledge(ws, "io/00-c.md", "Gamma", 3, plan="plans/io.md", part=1)
    _drop(ws, "io/00-c.md", "Gamma", "plans/io.md", 1)
    _drop(ws, "io/01-e.md", "Epsilon", "plans/io.md", 2, status="failed")
    _knowledge(ws, "my notes/00-f.md", "Phi", 6, plan="plans/io.md", part=3)
    _drop(ws, "my notes/00-f.md", "Phi", "plans/io.md", 3, slug="phi")
    (ws.knowledge_dir / "io" / "02-old.md").write_text(
        "# Old style\n\n**A file from before front matter.**\n\n## Overview\n\nIt has none.\n\n## Sources\n\n- one\n- two\n")
    (ws.drops_dir / "KNOWLEDGE-DROP-old-2025-11-10-0900.md").write_text(
        "# KNOWLEDGE DROP: Old style\n\n**Created**: 2025-11-10\n**Part**: 9\n**Target File**: knowledge/io/02-old.md\n"
        "**Status**: COMPLETE ✓\n\n## What Was Created\n\nIt.\n")
    (ws.root / "snippets").mkdir(exist_ok=True)
    (ws.root / "snippets" / "results.json").write_text(json.dumps({"snippets": [
        {"file": "knowledge/perf/00-a.md", "line": 9, "status": "pass"},
        {"file": "knowledge/perf/01-b.md", "line": 9, "status": "fail"},
        {"file": "knowledge/io/00-c.md", "line": 9, "status": "skip", "reason": "needs cuda"},
    ]}))


def next_batch(ws) -> None:
    """io PART 2 is rerun and succeeds; a hand edit and a deletion ride along."""
    (ws.plans_dir / "io.md").write_text(plan_text(
        [(1, "io/00-c.md", True), (2, "io/01-e.md", True), (3, "my notes/00-f.md", True)], topic="IO"))
    _knowledge(ws, "io/01-e.md", "Epsilon", 5, plan="plans/io.md", part=2)
    _drop(ws, "io/01-e.md", "Epsilon", "plans/io.md", 2, slug="epsilon-again")
    edited = ws.knowledge_dir / "perf" / "01-b.md"
    edited.write_text(edited.read_text() + "\nA note by hand.\n")
    (ws.knowledge_dir / "perf" / "02-dup.md").unlink()


def _normal(text: str, root: Path) -> str:
    text = text.replace(str(root), "<ws>")
    text = re.sub(r"\b[0-9a-f]{40}\b", "<sha>", text)
    text = re.sub(r"Committed [0-9a-f]{10}:", "Committed <sha>:", text)
    return re.sub(r'"seconds": [0-9.]+', '"seconds": 0', text)


def _message(root: Path) -> str:
    return run_git(root, "log", "-1", "--format=%B")


def _compare(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KB_GOLDEN_WRITE"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), name


def _run(root: Path, *args: str) -> str:
    result = run_kb("consolidate", *args, cwd=root)
    assert result.code == 0, result.err
    return _normal(f"--- stdout\n{result.out}--- stderr\n{result.err}", root)


def test_stdout_and_commit_messages_are_as_recorded(tmp_path):
    ws = make_workspace(tmp_path)
    build(ws)
    _compare("first.txt", _run(ws.root) + "--- commit\n" + _message(ws.root))
    next_batch(ws)
    _compare("second.txt", _run(ws.root) + "--- commit\n" + _message(ws.root))
    _compare("noop.txt", _run(ws.root))
    _compare("index.md", ws.index_path.read_text())
    _compare("skill.md", ws.skill_path.read_text())


def test_json_and_commit_messages_are_as_recorded(tmp_path):
    ws = make_workspace(tmp_path)
    build(ws)
    _compare("first.json", _run(ws.root, "--json") + "--- commit\n" + _message(ws.root))
    next_batch(ws)
    _compare("second.json", _run(ws.root, "--json") + "--- commit\n" + _message(ws.root))
    _compare("noop.json", _run(ws.root, "--json"))


def test_no_commit_output_is_as_recorded(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    build(ws)
    _compare("no-commit.txt", _run(ws.root, "--write-only"))
    next_batch(ws)
    _compare("no-commit-second.json", _run(ws.root, "--write-only", "--json"))
