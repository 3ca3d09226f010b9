"""`kb run-plan` as a user runs it: a real subprocess, the fake engine plugged in through ``--engine module:function``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kb.plan import load_plan
from kb.records import read_drop, read_knowledge
from kb.runner.lock import workspace_lock
from kb.workspace import init_workspace

from conftest import run_kb

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from runplan_fakes import plan_text  # noqa: E402

ENGINE = ["--engine", "runplan_fakes:make_engine"]


@pytest.fixture
def ws(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    return workspace


def env(**extra) -> dict:
    return {"PYTHONPATH": str(TESTS), **{k: str(v) for k, v in extra.items()}}


def write_plan(ws, batches, **kw) -> Path:
    path = ws.plans_dir / "p.md"
    path.write_text(plan_text(batches, **kw), encoding="utf-8")
    return path


def statuses(ws) -> dict[int, str]:
    return {p.number: p.status for p in load_plan(ws.plans_dir / "p.md").parts}


def writes(log: Path) -> Counter:
    if not log.exists():
        return Counter()
    return Counter(int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("write "))


def leftovers(ws) -> list[Path]:
    """Temporary or half-written files anywhere kb writes."""
    return [p for p in ws.root.rglob("*") if p.is_file() and ".kb" not in p.parts
            and (p.name.endswith(".tmp") or p.name.startswith("."))
            and p.name not in (".gitkeep", ".gitignore")]


def test_sigkill_mid_batch_then_resume_finishes_without_redoing(ws, tmp_path):
    plan = write_plan(ws, [6])
    log = tmp_path / "writes.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", "run-plan", "plans/p.md", "--batch", "1", "--runners", "2", *ENGINE],
        cwd=ws.root, env={**os.environ, **env(KB_FAKE_DELAY=0.8, KB_FAKE_LOG=log)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = {n for n, s in statuses(ws).items() if s == "done"}
            if len(done) >= 2 and set(writes(log)) - done:  # two finished, and others mid-write
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    finished_before = {n for n, s in statuses(ws).items() if s == "done"}
    assert 2 <= len(finished_before) < 6, "the kill must land mid-batch"
    in_flight = set(writes(log)) - finished_before

    result = run_kb("run-plan", "plans/p.md", "--batch", "1", "--resume", *ENGINE, cwd=ws.root,
                    env=env(KB_FAKE_DELAY=0.1, KB_FAKE_LOG=log))
    assert result.code == 0, result.out + result.err
    assert "resuming" in result.out
    counts = writes(log)
    for number in finished_before:
        assert counts[number] == 1, f"PART {number} was finished before the kill and written again"
    assert set(counts) == set(range(1, 7))
    assert in_flight  # PARTs the kill interrupted were written again: only those
    assert statuses(ws) == {n: "done" for n in range(1, 7)}
    for number in range(1, 7):
        doc = read_knowledge(ws.knowledge_dir / f"topic/{number:02d}-part-{number}.md")
        assert doc.meta.part == number and not doc.edited_by_hand
    drops = [read_drop(p) for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*.md")]
    assert sorted(d.part for d in drops) == list(range(1, 7))  # one drop each: a resumed PART rewrote its own
    assert all(d.status == "complete" for d in drops)
    assert leftovers(ws) == []
    assert plan.read_text(encoding="utf-8").count("[✓]") == 6


def test_failing_part_exits_non_zero_with_a_summary(ws):
    write_plan(ws, [3], targets={2: "../../x.md"})
    result = run_kb("run-plan", "plans/p.md", "--batch", "1", *ENGINE, cwd=ws.root, env=env())
    assert result.code == 1
    assert "BATCH 1: 2 done, 1 failed" in result.out
    assert re.search(r"PART 2 failed: refused: target '\.\./\.\./x\.md' escapes", result.out)
    assert statuses(ws) == {1: "done", 2: "pending", 3: "done"}
    failed = [read_drop(p) for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*.md") if read_drop(p).status == "failed"]
    assert [d.part for d in failed] == [2] and "knowledge/" in failed[0].reason
    assert not (ws.root.parent.parent / "x.md").exists()


def test_second_run_does_nothing_and_redo_reruns(ws, tmp_path):
    write_plan(ws, [2, 1])
    log = tmp_path / "writes.log"
    first = run_kb("run-plan", "plans/p.md", "--batch", "1", *ENGINE, cwd=ws.root, env=env(KB_FAKE_LOG=log))
    assert first.code == 0, first.err
    snapshot = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file() and ".kb" not in p.parts}
    second = run_kb("run-plan", "plans/p.md", "--batch", "1", *ENGINE, cwd=ws.root, env=env(KB_FAKE_LOG=log))
    assert second.code == 0
    assert "Nothing to do: every PART of BATCH 1 in plans/p.md is done" in second.out
    assert {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file() and ".kb" not in p.parts} == snapshot
    assert sum(writes(log).values()) == 2
    redo = run_kb("run-plan", "plans/p.md", "--batch", "1", "--redo", "--json", *ENGINE, cwd=ws.root,
                  env=env(KB_FAKE_LOG=log))
    assert redo.code == 0, redo.err
    report = json.loads(redo.out)
    assert report["runs"][0]["summary"]["counts"]["done"] == 2 and report["exit_code"] == 0
    assert writes(log) == Counter({1: 2, 2: 2})


def test_batch_two_before_batch_one_warns_and_proceeds(ws):
    write_plan(ws, [1, 1])
    result = run_kb("run-plan", "plans/p.md", "--batch", "2", *ENGINE, cwd=ws.root, env=env())
    assert result.code == 0
    assert "BATCH 1 is unfinished (PART 1 pending); running BATCH 2 anyway" in result.err
    assert statuses(ws) == {1: "pending", 2: "done"}


def test_plan_outside_the_workspace_is_refused(ws, tmp_path):
    outside = tmp_path / "x.md"
    outside.write_text(plan_text([1]), encoding="utf-8")
    result = run_kb("run-plan", "../x.md", *ENGINE, cwd=ws.root, env=env())
    assert result.code == 2
    assert "outside the workspace" in result.err
    assert "[✓]" not in outside.read_text(encoding="utf-8")


def test_a_locked_workspace_is_refused_naming_the_holder(ws):
    write_plan(ws, [1])
    with workspace_lock(ws, "kb run-plan (the test)"):
        result = run_kb("run-plan", "plans/p.md", *ENGINE, cwd=ws.root, env=env())
    assert result.code == 2
    assert f"locked by kb process {os.getpid()}" in result.err and "kb run-plan (the test)" in result.err
    assert statuses(ws) == {1: "pending"}
    # Released: the same command now runs.
    assert run_kb("run-plan", "plans/p.md", *ENGINE, cwd=ws.root, env=env()).code == 0


def test_the_lock_dies_with_a_killed_holder(ws):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from kb.workspace import open_workspace; from kb.runner.lock import workspace_lock\n"
         f"with workspace_lock(open_workspace({str(ws.root)!r}), 'holder'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"locked by kb process {holder.pid}"):
            with workspace_lock(ws, "second"):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with workspace_lock(ws, "after the kill"):
        assert json.loads((ws.state_dir / "lock.json").read_text())["pid"] == os.getpid()
    assert not (ws.state_dir / "lock.json").exists()


def test_review_approve_and_decline_in_the_terminal(ws):
    write_plan(ws, [1, 1])
    approve = subprocess.run(
        [sys.executable, "-m", "kb", "run-plan", "plans/p.md", "--batch", "1", "--review", *ENGINE],
        cwd=ws.root, env={**os.environ, **env(), "COLUMNS": "200"}, input="y\n", capture_output=True, text=True, timeout=120,
    )
    assert approve.returncode == 0, approve.stderr
    assert "Approve BATCH 1 as reviewed? [y/N]" in approve.stderr and "Review: BATCH 1 approved." in approve.stdout
    # --all: the gate after BATCH 2 is declined; a decline exits 3 and is recorded.
    write_plan(ws, [1, 1, 1])
    decline = subprocess.run(
        [sys.executable, "-m", "kb", "run-plan", "plans/p.md", "--all", "--review", *ENGINE],
        cwd=ws.root, env={**os.environ, **env(), "COLUMNS": "200"}, input="y\nn\n", capture_output=True, text=True,
        timeout=120,
    )
    assert decline.returncode == 3, decline.stdout + decline.stderr
    assert "Review: BATCH 2 declined" in decline.stdout and "later batches were not run" in decline.stdout
    assert statuses(ws) == {1: "done", 2: "done", 3: "pending"}  # BATCH 3 waits for a person
    reviews = json.loads((ws.state_dir / "reviews.json").read_text())["plans/p.md"]
    assert reviews["BATCH 1"]["approved"] is True and reviews["BATCH 2"]["approved"] is False


def test_dry_run_writes_nothing(ws):
    write_plan(ws, [2], targets={2: "../../x.md"})
    before = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    result = run_kb("run-plan", "plans/p.md", "--dry-run", "--json", cwd=ws.root, env=env())
    assert result.code == 0, result.err
    report = json.loads(result.out)
    rows = {r["part"]: r for r in report["units"][0]["parts"]}
    assert rows[1]["file"] == "knowledge/topic/01-part-1.md" and rows[2]["note"].startswith("would fail: refused")
    assert {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()} == before


def test_the_default_offline_engine_runs_without_network(ws):
    """No --engine: build_engine's offline writer + local search, over a small folder corpus (no torch index)."""
    write_plan(ws, [2])
    config = (ws.root / "kb.toml").read_text(encoding="utf-8")
    config = config.replace('packages = ["torch"]', "packages = []").replace("folders = []", 'folders = ["notes"]')
    (ws.root / "kb.toml").write_text(config, encoding="utf-8")
    (ws.root / "notes").mkdir()
    (ws.root / "notes/alpha.md").write_text("# Alpha 1\n\nAlpha 1 is the first topic. Alpha 1 first matters for part 1 topic.\n", encoding="utf-8")
    result = run_kb("run-plan", "plans/p.md", "--batch", "1", cwd=ws.root)
    assert result.code == 0, result.out + result.err
    assert "(offline engine)" in result.out
    doc = read_knowledge(ws.knowledge_dir / "topic/01-part-1.md")
    assert doc.meta.engine == "offline" and doc.meta.model is None and not doc.edited_by_hand
    assert "## Section 1: Alpha 1" in doc.body and doc.meta.sources[0].locator == "notes/alpha.md"
    drops = [read_drop(p) for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*.md")]
    assert sorted(d.part for d in drops) == [1, 2] and {d.engine for d in drops} == {"offline"}
    assert statuses(ws) == {1: "done", 2: "done"}
    # Research's warning for a section it found nothing for reaches the drop once (the offline writer passes it on).
    for drop in drops:
        assert drop.warnings and len(drop.warnings) == len(set(drop.warnings))


def test_a_broken_runner_definition_stops_the_run_before_it_starts(ws):
    write_plan(ws, [1])
    (ws.runners_dir / "broken.md").write_text("---\nname: Bad Name\n---\nbody\n", encoding="utf-8")
    result = run_kb("run-plan", "plans/p.md", *ENGINE, cwd=ws.root, env=env())
    assert result.code == 2 and "broken.md" in result.err
    assert statuses(ws) == {1: "pending"} and not list(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
